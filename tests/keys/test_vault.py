"""KEY_STORE=azure-keyvault against a loopback HTTPS fake Key Vault, driven by the real SDK.

Keys are created and used inside the vault; the database holds only the public key and the key id;
every signature is checked locally before a token leaves; every vault fault is a KeyStoreUnavailable
(the exchange's 503 with Retry-After) and the service recovers once the vault does.
"""

from __future__ import annotations

import time

import pytest

from keys import engine, vault
from keys.errors import KeyStoreUnavailable
from keys.models import SigningKey
from keys.services import key_caches_clear, signing_key_revoke, signing_key_rotate, token_sign
from tests.support.jwks import decoded, published_kids

pytestmark = pytest.mark.django_db


def vault_version(fake, key: SigningKey):
    return fake.version_of(bytes(key.store_reference).decode())


def test_a_key_is_created_inside_the_vault_and_the_database_keeps_only_its_id(key_vault):
    signing_key_rotate()

    key = SigningKey.objects.get(phase=engine.ACTIVE)
    reference = bytes(key.store_reference).decode()
    assert key.store == "azure-keyvault"
    assert reference.startswith(f"{key_vault.url}keys/token-signing/")
    assert vault_version(key_vault, key).key_ops == ["sign"]
    assert published_kids() == [key.kid]


def test_tokens_are_signed_by_the_vault_and_verify_against_the_jwks(key_vault):
    signing_key_rotate()

    token = token_sign(claims={"sub": "p-1"})

    assert decoded(token).header["kid"] == SigningKey.objects.get(phase=engine.ACTIVE).kid
    assert key_vault.calls["sign"] == 1
    assert key_vault.calls["challenge"] <= 1  # the 401 challenge once per vault, then the token


@pytest.mark.parametrize("algorithm", ["RS256", "PS256"])
def test_rsa_keys_in_the_vault_are_3072_bits_and_sign(key_vault, settings, algorithm):
    settings.KEY_ALGORITHM = algorithm
    signing_key_rotate()

    key = SigningKey.objects.get(phase=engine.ACTIVE)
    assert vault_version(key_vault, key).private_key.key_size == 3072
    assert decoded(token_sign(claims={"sub": "p-1"})).header["alg"] == algorithm


def test_rotation_activation_and_revocation_disable_the_old_version(
    key_vault, clock, weekly_rotation, django_capture_on_commit_callbacks
):
    signing_key_rotate()
    first = SigningKey.objects.get(phase=engine.ACTIVE)
    signing_key_rotate(force=True)
    clock.advance(seconds=weekly_rotation.publish_lead.total_seconds())
    signing_key_rotate()
    key_caches_clear()
    second = SigningKey.objects.get(phase=engine.ACTIVE)
    assert second.kid != first.kid
    assert decoded(token_sign(claims={"sub": "p-1"})).header["kid"] == second.kid
    first_version = vault_version(key_vault, first)

    with django_capture_on_commit_callbacks(execute=True):
        signing_key_revoke(kid=first.kid)

    assert first_version.enabled is False
    assert first.kid not in published_kids()


def test_revoking_the_active_key_disables_it_at_once_and_a_new_vault_key_signs(
    key_vault, django_capture_on_commit_callbacks
):
    signing_key_rotate()
    active = SigningKey.objects.get(phase=engine.ACTIVE)
    version = vault_version(key_vault, active)

    with django_capture_on_commit_callbacks(execute=True):
        signing_key_revoke(kid=active.kid)
    key_caches_clear()

    assert version.enabled is False
    assert decoded(token_sign(claims={"sub": "p-1"})).header["kid"] != active.kid


def test_a_vault_key_created_for_a_rotation_whose_transaction_fails_is_disabled(key_vault, monkeypatch):
    from keys import services

    signing_key_rotate()

    def failing_publish():
        raise RuntimeError("the database went away")

    monkeypatch.setattr(services, "jwks_publish", failing_publish)
    with pytest.raises(RuntimeError):
        signing_key_rotate(force=True)

    versions = key_vault.keys["token-signing"]
    assert len(versions) == 2
    assert versions[-1].enabled is False
    assert SigningKey.objects.count() == 1


# --- faults ------------------------------------------------------------------------------------


@pytest.fixture
def signing(key_vault):
    signing_key_rotate()
    token_sign(claims={"sub": "warm"})  # the challenge, the token and the key are fetched once
    return key_vault


def test_a_throttled_vault_gives_unavailable_with_its_retry_after_and_recovers(signing):
    signing.fail(status=429, retry_after=7, operation="sign")

    with pytest.raises(KeyStoreUnavailable) as refused:
        token_sign(claims={"sub": "p-1"})

    assert refused.value.retry_after == 7
    vault.guard.reset()  # the vault's Retry-After has passed
    assert decoded(token_sign(claims={"sub": "p-1"}))


@pytest.mark.parametrize("status", [500, 503])
def test_a_failing_vault_gives_unavailable_and_recovers(signing, status):
    signing.fail(status=status, operation="sign")

    with pytest.raises(KeyStoreUnavailable):
        token_sign(claims={"sub": "p-1"})

    assert decoded(token_sign(claims={"sub": "p-1"}))


def test_a_slow_vault_is_given_up_on_within_three_seconds(signing):
    signing.fail(delay=4.0, operation="sign")

    started = time.monotonic()
    with pytest.raises(KeyStoreUnavailable, match="no answer in time"):
        token_sign(claims={"sub": "p-1"})

    assert time.monotonic() - started <= 3.0


def test_a_signature_that_does_not_verify_never_leaves_as_a_token(signing, caplog):
    signing.fail(garbage=True, operation="sign")

    with pytest.raises(KeyStoreUnavailable, match="does not verify"):
        token_sign(claims={"sub": "p-1"})

    assert "does not verify" in caplog.text


def test_a_disabled_key_gives_unavailable(signing):
    vault_version(signing, SigningKey.objects.get(phase=engine.ACTIVE)).enabled = False

    with pytest.raises(KeyStoreUnavailable, match="403"):
        token_sign(claims={"sub": "p-1"})


@pytest.mark.parametrize("inner", ["ForbiddenByFirewall", "ForbiddenByRbac"])
def test_the_log_tells_a_firewall_refusal_from_a_missing_role(signing, caplog, inner):
    signing.fail(status=403, code="Forbidden", inner=inner, operation="sign")

    with pytest.raises(KeyStoreUnavailable, match=f"403 Forbidden {inner}"):
        token_sign(claims={"sub": "p-1"})

    assert f"403 Forbidden {inner}" in caplog.text


def test_a_refused_credential_gives_unavailable(key_vault):
    key_vault.refuse_credential = True

    with pytest.raises(KeyStoreUnavailable, match="credential"):
        signing_key_rotate()


def test_after_repeated_failures_the_vault_is_left_alone_for_a_while(signing):
    signing.fail(status=500, count=3, operation="sign")
    for _ in range(3):
        with pytest.raises(KeyStoreUnavailable):
            token_sign(claims={"sub": "p-1"})
    calls = signing.calls["sign"]

    with pytest.raises(KeyStoreUnavailable, match="not called"):
        token_sign(claims={"sub": "p-1"})

    assert signing.calls["sign"] == calls


# --- the private endpoint and readiness -----------------------------------------------------------


def test_a_vault_that_resolves_to_a_public_address_fails_readiness_when_a_private_endpoint_is_required(
    key_vault, settings
):
    from keys.checks import signing_keys_check
    from keys.services import key_store_readiness

    settings.KEY_VAULT_REQUIRE_PRIVATE_ENDPOINT = True
    assert key_store_readiness() == "ok"  # the fake listens on loopback: a private address

    settings.KEY_VAULT_URL = "https://8.8.8.8"

    assert "would take the public path" in key_store_readiness()
    assert [error.id for error in signing_keys_check()] == ["keys.E003"]


def test_readiness_reports_a_vault_left_alone_after_failures(signing):
    from keys.services import key_store_readiness

    signing.fail(status=500, count=3, operation="sign")
    for _ in range(3):
        with pytest.raises(KeyStoreUnavailable):
            token_sign(claims={"sub": "p-1"})

    assert "repeated failures" in key_store_readiness()


def test_readyz_fails_naming_the_key_store_when_the_vault_would_take_the_public_path(
    key_vault, settings, client
):
    settings.KEY_VAULT_REQUIRE_PRIVATE_ENDPOINT = True
    settings.KEY_VAULT_URL = "https://8.8.8.8"

    response = client.get("/readyz")

    assert response.status_code == 503
    assert "would take the public path" in response.json()["checks"]["key_store"]
