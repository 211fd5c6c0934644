"""Attacks on the provider boundary, over real HTTP against the fakes: each refused, and nothing of one
provider ever used for another's tokens."""

from __future__ import annotations

import hashlib
import hmac
import math

import pytest
from cryptography.hazmat.primitives import serialization

from accounts.identity import TokenRejected, TokenValidator, token_validate
from accounts.provider_key_store import ProviderKeySetStore
from accounts.provider_keys import JwksCache, JwksUnavailable
from tests import fake_providers as fakes
from tests.fake_entra import b64url, b64url_json, rsa_key
from tests.fake_providers import ec_key, sign_as

pytestmark = pytest.mark.django_db

START = 1_800_000_000.0


def rejected(token: str, *, validator: TokenValidator | None = None) -> TokenRejected:
    with pytest.raises(TokenRejected) as caught:
        (validator or TokenValidator()).validate(token)
    assert "eyJ" not in caught.value.description
    return caught.value


def public_pem(key) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


# --- keys of one provider never serve another ----------------------------------------------------


def test_the_same_kid_published_by_two_providers_verifies_only_its_own_provider_s_tokens(fake_providers):
    external_key, b2c_key = rsa_key(), rsa_key()
    fake_providers.external.keys = [("shared-kid", external_key)]
    fake_providers.b2c.keys = [("shared-kid", b2c_key)]
    assert token_validate(token=fake_providers.b2c.mint()).provider == "consumers"  # B2C's key is cached

    # External ID's issuer and claims, signed with B2C's key under the kid both publish.
    forged = fake_providers.external.mint(key=b2c_key)

    assert rejected(forged).check == "signature"
    assert token_validate(token=fake_providers.external.mint()).provider == "customers"


def test_a_key_published_only_by_an_untrusted_origin_is_never_fetched(fake_providers):
    kid = fake_providers.oidc.signing[0]
    attacker_key = ec_key()
    fake_providers.attacker.keys = [(kid, attacker_key)]

    assert rejected(fake_providers.oidc.mint(key=attacker_key)).check == "signature"
    assert fake_providers.attacker.total_fetches == 0


def test_a_token_whose_issuer_no_provider_has_is_refused_without_any_fetch(fake_providers):
    token = fake_providers.attacker.mint()

    error = rejected(token)

    assert (error.check, error.description) == (
        "issuer",
        "the token's issuer is not a trusted identity provider",
    )
    assert fake_providers.total_fetches == 0


# --- the provider's metadata must vouch for it ---------------------------------------------------


def test_metadata_naming_another_issuer_is_refused_and_its_keys_never_fetched(fake_providers):
    fake_providers.oidc.metadata_issuer = fake_providers.external.issuer

    error = rejected(fake_providers.oidc.mint())

    assert error.check == "provider_keys"
    assert fake_providers.oidc.total_fetches == 1  # the metadata only


def test_a_jwks_uri_off_the_provider_s_origin_is_refused_without_connecting(fake_providers):
    kid = fake_providers.oidc.signing[0]
    attacker_key = ec_key()
    fake_providers.attacker.keys = [(kid, attacker_key)]
    fake_providers.oidc.jwks_uri = fake_providers.attacker.jwks_url()

    assert rejected(fake_providers.oidc.mint(key=attacker_key)).check == "provider_keys"
    assert fake_providers.attacker.total_fetches == 0


def test_a_refused_metadata_answer_leaves_the_last_known_good_keys_in_use(fake_providers, freeze_clock):
    cache = JwksCache(timeout=0.5, refresh_in_background=False)
    validator = TokenValidator(jwks=cache)
    clock = freeze_clock(cache, validator, at=START)
    assert validator.validate(fake_providers.oidc.mint(now=clock.now)).provider == "okta"
    fake_providers.oidc.metadata_issuer = "https://attacker.example"

    clock.advance(cache.refresh_after)  # due: the refresh is refused, the keys stay
    assert validator.validate(fake_providers.oidc.mint(now=clock.now)).provider == "okta"
    assert fake_providers.oidc.metadata_fetches() == 2


def test_a_signing_key_the_jwks_scopes_to_another_issuer_is_refused(fake_providers, monkeypatch):
    from tests import fake_providers as module

    monkeypatch.setattr(
        module,
        "jwk_of",
        lambda key, kid, **extra: module.ec_public_jwk(key, kid, issuer="https://other.example"),
    )

    assert rejected(fake_providers.oidc.mint()).check == "issuer"


# --- user flows ----------------------------------------------------------------------------------


def test_a_b2c_token_from_a_user_flow_that_is_not_accepted_is_refused_before_any_fetch(fake_providers):
    token = fake_providers.b2c.mint(tfp=fakes.RESET_FLOW)  # genuinely signed: the tenant's own key

    error = rejected(token)

    assert (error.check, error.description) == (
        "user_flow",
        "the token comes from a user flow that is not accepted",
    )
    assert fake_providers.total_fetches == 0


def test_a_b2c_token_naming_no_user_flow_is_refused(fake_providers):
    assert rejected(fake_providers.b2c.mint(tfp=None)).check == "claims_missing"


# --- algorithms ----------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", ["oidc", "external"])
def test_hs256_signed_with_the_provider_s_public_key_is_refused_before_any_fetch(fake_providers, provider):
    fake = getattr(fake_providers, provider)
    kid, key = fake.signing
    signing_input = f"{b64url_json({'alg': 'HS256', 'kid': kid})}.{b64url_json(fake.claims())}"
    signature = hmac.new(public_pem(key), signing_input.encode(), hashlib.sha256).digest()

    assert rejected(f"{signing_input}.{b64url(signature)}").check == "algorithm"
    assert fake_providers.total_fetches == 0


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_alg_none_is_refused_for_every_provider(fake_providers, alg):
    for fake in (fake_providers.oidc, fake_providers.external, fake_providers.b2c):
        signing_input = f"{b64url_json({'alg': alg, 'kid': fake.signing[0]})}.{b64url_json(fake.claims())}"
        assert rejected(f"{signing_input}.").check == "algorithm"
    assert fake_providers.total_fetches == 0


def test_an_algorithm_the_provider_does_not_list_is_refused_even_with_its_own_key(fake_providers):
    error = rejected(fake_providers.external.mint(algorithm="PS256"))  # External ID here: RS256 only

    assert (error.check, error.description) == ("algorithm", "only RS256 signatures are accepted")


def test_the_key_type_is_bound_to_the_algorithm(fake_providers, trust):
    trust(fake_providers.external.entry("customers", algorithms=["RS256", "ES256"]))
    kid, rsa_signing_key = fake_providers.external.signing
    ec_signing_key = ec_key()

    # ES256 under the kid of an RSA key: the RSA key may not verify an ECDSA signature.
    token = fake_providers.external.mint(algorithm="ES256", key=ec_signing_key, header={"kid": kid})

    error = rejected(token)
    assert (error.check, error.description) == (
        "algorithm",
        "the token's algorithm does not fit its signing key",
    )
    assert token_validate(token=fake_providers.external.mint(key=rsa_signing_key)).provider == "customers"


def test_a_jwk_that_names_its_algorithm_verifies_that_algorithm_only(fake_providers, trust, monkeypatch):
    from tests import fake_providers as module

    trust(fake_providers.external.entry("customers", algorithms=["RS256", "PS256"]))
    monkeypatch.setattr(module, "jwk_of", lambda key, kid, **extra: module.public_jwk(key, kid, alg="RS256"))

    assert rejected(fake_providers.external.mint(algorithm="PS256")).check == "algorithm"
    assert token_validate(token=fake_providers.external.mint()).provider == "customers"


@pytest.mark.parametrize("length", [0, 63, 65, 72])
def test_an_es256_signature_that_is_not_64_octets_is_refused(fake_providers, length):
    header, payload, _ = fake_providers.oidc.mint().split(".")

    assert rejected(f"{header}.{payload}.{b64url(bytes(length))}").check == "signature"


def test_an_es256_signature_in_der_instead_of_r_and_s_is_refused(fake_providers):
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    kid, key = fake_providers.oidc.signing
    signing_input = f"{b64url_json({'alg': 'ES256', 'kid': kid})}.{b64url_json(fake_providers.oidc.claims())}"
    der = key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))

    assert rejected(f"{signing_input}.{b64url(der)}").check == "signature"


def test_a_tampered_es256_token_is_refused(fake_providers):
    header, _, signature = fake_providers.oidc.mint().split(".")
    payload = b64url_json(fake_providers.oidc.claims(sub="someone-else"))

    assert rejected(f"{header}.{payload}.{signature}").check == "signature"


def test_the_fake_signs_es256_and_ps256_as_rfc_7518_says(fake_providers):
    """The fake's PS256 and ES256 are RFC 7518's, checked against an independent library."""
    import jwt

    kid, key = fake_providers.oidc.signing
    token = sign_as({"alg": "ES256", "kid": kid}, {"sub": "x"}, key, "ES256")

    assert jwt.decode(token, key.public_key(), algorithms=["ES256"]) == {"sub": "x"}
    rsa = rsa_key()
    assert jwt.decode(sign_as({"alg": "PS256"}, {"sub": "x"}, rsa, "PS256"), rsa.public_key(), ["PS256"])


# --- the key cache's rules hold for every provider -------------------------------------------------


def test_forged_kids_refetch_a_provider_s_keys_at_most_once_per_cooldown(fake_providers, freeze_clock):
    cache = JwksCache(timeout=0.5)
    validator = TokenValidator(jwks=cache)
    clock = freeze_clock(cache, validator, at=START)
    validator.validate(fake_providers.oidc.mint(now=clock.now))
    attacker = ec_key()

    for number in range(60):
        forged = fake_providers.oidc.mint(now=clock.now, key=attacker, header={"kid": f"forged-{number}"})
        assert rejected(forged, validator=validator).check == "kid_unknown"
        clock.advance(1)

    assert fake_providers.oidc.metadata_fetches() == 1 + math.ceil(60 / cache.kid_refetch_cooldown)


def test_a_worker_started_while_the_provider_is_down_verifies_with_the_stored_keys(
    fake_providers, freeze_clock
):
    def worker() -> TokenValidator:
        return TokenValidator(
            jwks=JwksCache(timeout=0.5, refresh_in_background=False, store=ProviderKeySetStore())
        )

    clock = freeze_clock(JwksCache, TokenValidator, at=START)
    assert worker().validate(fake_providers.b2c.mint(now=clock.now)).provider == "consumers"
    fake_providers.b2c.mode = fakes.DOWN

    clock.advance(3600)
    assert worker().validate(fake_providers.b2c.mint(now=clock.now)).provider == "consumers"
    fake_providers.external.mode = fakes.DOWN
    with pytest.raises(JwksUnavailable):  # nothing of External ID was ever stored
        worker().validate(fake_providers.external.mint(now=clock.now))
