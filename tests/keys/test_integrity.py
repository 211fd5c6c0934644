"""The store's integrity: what someone who can write to the database or the cache can and cannot do.

Writing to the database must not publish a key (every published row is bound to the sealed private
key under the key-encryption secret), writing to the cache must not change what is served (the
cached JWKS carries a MAC), and one corrupt row must never block revoking it.
"""

from __future__ import annotations

import importlib
import json
import logging
import pickle
from io import StringIO

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from django.core.cache import cache
from django.core.management import call_command

from keys import engine
from keys.checks import signing_keys_verify
from keys.models import JwksDocument, SigningKey
from keys.selectors import JWKS_CACHE_KEY, jwks_document_get
from keys.services import (
    jwks_publish,
    key_caches_clear,
    signing_key_reencrypt,
    signing_key_revoke,
    token_sign,
)
from keys.stores import jwk_thumbprint, public_jwk
from tests.support.jwks import decoded, published_kids

pytestmark = pytest.mark.django_db
OLD_SECRET = "the-old-key-encryption-secret-0123456789"
NEW_SECRET = "the-new-key-encryption-secret-0123456789"


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def attacker_jwk() -> dict[str, str]:
    return public_jwk(ec.generate_private_key(ec.SECP256R1()).public_key())


def rogue_row(*, phase: str = engine.RETIRING, jwk: dict[str, str] | None = None, **fields) -> SigningKey:
    """A key row written straight into the database, as someone without the secret could."""
    template = SigningKey.objects.get(phase=engine.ACTIVE)
    jwk = jwk or attacker_jwk()
    row = SigningKey(
        kid=fields.pop("kid", jwk_thumbprint(jwk)),
        algorithm="ES256",
        phase=phase,
        public_jwk=jwk,
        store="local",
        store_reference=fields.pop("store_reference", b"\x01" + b"\x00" * 60),
        created_at=template.created_at,
        published_at=template.published_at,
        **fields,
    )
    row._change_reason = "written by hand"
    row.save()
    return row


def corrupt(kid: str) -> None:
    key = SigningKey.objects.get(kid=kid)
    sealed = bytes(key.store_reference)
    SigningKey.objects.filter(kid=kid).update(store_reference=sealed[:-1] + bytes([sealed[-1] ^ 1]))


# --- revoking needs no private material ---------------------------------------------------------


def test_rotate_keys_revokes_a_key_whose_sealed_private_key_is_corrupt():
    run("rotate_keys")
    run("rotate_keys", "--force")
    pending = SigningKey.objects.get(phase=engine.PENDING).kid
    corrupt(pending)

    assert f"Revoked {pending}" in run("rotate_keys", "--revoke", pending)
    assert SigningKey.objects.get(kid=pending).phase == engine.REVOKED
    assert pending not in published_kids()


def test_rotate_keys_revokes_a_rogue_row_and_the_active_key_keeps_signing():
    run("rotate_keys")
    rogue = rogue_row()

    assert f"Revoked {rogue.kid}" in run("rotate_keys", "--revoke", rogue.kid)
    assert decoded(token_sign(claims={"sub": "p-1"}))


def test_rotate_keys_revokes_a_corrupt_active_key_and_a_fresh_key_signs():
    run("rotate_keys")
    active = SigningKey.objects.get(phase=engine.ACTIVE).kid
    corrupt(active)

    run("rotate_keys", "--revoke", active)
    key_caches_clear()

    assert SigningKey.objects.get(phase=engine.ACTIVE).kid != active
    assert decoded(token_sign(claims={"sub": "p-1"}))


def test_start_up_names_a_corrupt_row_but_still_starts_so_the_portal_can_revoke_it(caplog):
    run("rotate_keys")
    run("rotate_keys", "--force")
    pending = SigningKey.objects.get(phase=engine.PENDING).kid
    corrupt(pending)

    with caplog.at_level(logging.ERROR, logger="keys"):
        signing_keys_verify()

    assert any(
        pending in record.getMessage() and "revoke" in record.getMessage() for record in caplog.records
    )


# --- a row in the database publishes nothing by itself -------------------------------------------


def test_a_key_written_into_the_database_is_never_published(caplog):
    run("rotate_keys")
    rogue = rogue_row()

    with caplog.at_level(logging.ERROR, logger="keys"):
        jwks_publish()

    assert rogue.kid not in published_kids()
    assert published_kids() == [SigningKey.objects.get(phase=engine.ACTIVE).kid]
    assert any(rogue.kid in record.getMessage() for record in caplog.records)


def test_a_real_row_whose_public_key_is_swapped_for_another_is_not_published():
    run("rotate_keys")
    run("rotate_keys", "--force")
    pending = SigningKey.objects.get(phase=engine.PENDING)
    jwk = attacker_jwk()
    SigningKey.objects.filter(pk=pending.pk).update(public_jwk=jwk, kid=jwk_thumbprint(jwk))

    jwks_publish()

    assert published_kids() == [SigningKey.objects.get(phase=engine.ACTIVE).kid]


def test_a_row_whose_kid_is_not_the_thumbprint_of_its_key_is_not_published():
    run("rotate_keys")
    run("rotate_keys", "--force")
    pending = SigningKey.objects.get(phase=engine.PENDING)
    active = SigningKey.objects.get(phase=engine.ACTIVE)
    # The binding of a real row, and the real row's key, under a kid chosen by the writer.
    SigningKey.objects.filter(pk=pending.pk).update(public_jwk=active.public_jwk)

    jwks_publish()

    assert published_kids() == [active.kid]


def test_the_binding_of_one_row_does_not_fit_another():
    run("rotate_keys")
    run("rotate_keys", "--force")
    active = SigningKey.objects.get(phase=engine.ACTIVE)
    rogue = rogue_row(binding=bytes(active.binding))

    jwks_publish()

    assert rogue.kid not in published_kids()


def test_an_active_row_that_fails_its_binding_signs_nothing():
    run("rotate_keys")
    active = SigningKey.objects.get(phase=engine.ACTIVE)
    jwk = attacker_jwk()
    SigningKey.objects.filter(pk=active.pk).update(public_jwk=jwk)
    key_caches_clear()

    with pytest.raises(Exception, match=active.kid):
        token_sign(claims={"sub": "p-1"})


def test_rows_made_before_binding_existed_are_bound_when_their_sealed_key_matches():
    run("rotate_keys")
    run("rotate_keys", "--force")
    SigningKey.objects.update(binding=b"")
    rogue = rogue_row(binding=b"")

    jwks_publish()

    legitimate = set(SigningKey.objects.exclude(pk=rogue.pk).values_list("kid", flat=True))
    assert set(published_kids()) == legitimate
    assert all(bytes(key.binding) for key in SigningKey.objects.exclude(pk=rogue.pk))
    assert bytes(SigningKey.objects.get(pk=rogue.pk).binding) == b""


def test_reencrypt_keys_binds_every_key_under_the_first_secret(settings):
    settings.KEY_ENCRYPTION_KEYS = [OLD_SECRET]
    run("rotate_keys")
    run("rotate_keys", "--force")
    settings.KEY_ENCRYPTION_KEYS = [NEW_SECRET, OLD_SECRET]
    signing_key_reencrypt()

    settings.KEY_ENCRYPTION_KEYS = [NEW_SECRET]
    jwks_publish()

    assert len(published_kids()) == 2


def test_publishing_with_a_secret_that_checks_no_row_refuses_instead_of_emptying_the_jwks(settings):
    settings.KEY_ENCRYPTION_KEYS = [OLD_SECRET]
    run("rotate_keys")
    before = jwks_document_get()
    settings.KEY_ENCRYPTION_KEYS = [NEW_SECRET]

    with pytest.raises(Exception, match="KEY_ENCRYPTION_KEY"):
        jwks_publish()

    settings.KEY_ENCRYPTION_KEYS = [OLD_SECRET]
    key_caches_clear()
    assert jwks_document_get() == before
    assert JwksDocument.objects.count() == 1


def test_revoking_with_a_corrupt_binding_elsewhere_still_publishes_the_good_keys():
    run("rotate_keys")
    run("rotate_keys", "--force")
    pending = SigningKey.objects.get(phase=engine.PENDING).kid
    rogue = rogue_row()

    signing_key_revoke(kid=rogue.kid)

    assert pending in published_kids()
    assert rogue.kid not in published_kids()


def test_a_jwks_document_written_into_the_database_is_not_served(caplog):
    run("rotate_keys")
    genuine = jwks_document_get()
    latest = JwksDocument.objects.get()
    body = forged_document().decode()
    JwksDocument.objects.create(
        version=latest.version + 1, body=body, etag='"forged"', created_at=latest.created_at
    )
    key_caches_clear()

    with caplog.at_level(logging.ERROR, logger="keys"):
        assert jwks_document_get() == genuine
    assert any("failed its MAC" in record.getMessage() for record in caplog.records)


def test_with_no_document_that_verifies_the_jwks_is_rendered_from_the_bound_rows():
    run("rotate_keys")
    rogue_row()
    JwksDocument.objects.update(mac=b"")
    key_caches_clear()

    assert published_kids() == [SigningKey.objects.get(phase=engine.ACTIVE).kid]


def test_the_upgrade_migration_binds_existing_rows_and_authenticates_the_latest_document():
    from django.apps import apps

    migration = importlib.import_module("keys.migrations.0002_integrity")
    run("rotate_keys")
    run("rotate_keys", "--force")
    genuine = jwks_document_get()
    SigningKey.objects.update(binding=b"")
    JwksDocument.objects.update(mac=b"")

    migration.bind_existing(apps, None)
    key_caches_clear()

    assert all(bytes(key.binding) for key in SigningKey.objects.all())
    assert jwks_document_get() == genuine
    assert JwksDocument.objects.filter(mac=b"").count() == JwksDocument.objects.count() - 1


# --- the cache serves only what the service wrote ----------------------------------------------


def forged_document(kid: str = "forged") -> bytes:
    jwk = {**attacker_jwk(), "kid": kid, "use": "sig", "alg": "ES256"}
    return json.dumps({"keys": [jwk]}).encode()


def test_a_jwks_written_into_the_cache_by_someone_else_is_not_served():
    run("rotate_keys")
    genuine = jwks_document_get()

    cache.set(JWKS_CACHE_KEY, (99, forged_document(), '"forged"'), 60)

    assert jwks_document_get() == genuine


def test_cached_bytes_with_a_wrong_mac_are_not_served():
    run("rotate_keys")
    genuine = jwks_document_get()
    cached = cache.get(JWKS_CACHE_KEY)
    assert isinstance(cached, bytes)

    cache.set(JWKS_CACHE_KEY, cached.replace(genuine[0], forged_document()), 60)

    assert jwks_document_get() == genuine


def test_the_jwks_cache_serializer_never_unpickles_what_it_reads():
    from keys.cache import BytesSerializer

    class Boom:
        def __reduce__(self):
            return (exec, ("raise SystemExit('unpickled')",))

    payload = pickle.dumps(Boom())
    serializer = BytesSerializer()

    assert serializer.loads(payload) == payload
    assert serializer.loads(serializer.dumps(b"body")) == b"body"
    with pytest.raises(TypeError):
        serializer.dumps({"not": "bytes"})
