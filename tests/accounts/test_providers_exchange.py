"""POST /oauth2/token with every kind of provider's token: our token out, and each attack a clean 400.

Through the whole Django stack, the providers' keys fetched from the fakes over real HTTP, the grants
imported from a policy file that names each grant's provider.
"""

from __future__ import annotations

import hashlib
import hmac

import pytest
from cryptography.hazmat.primitives import serialization

from accounts.models import Principal
from authz.policy import policy_import
from tests import fake_providers as fakes
from tests.fake_entra import b64url, b64url_json, rsa_key
from tests.fake_providers import ec_key
from tests.support.jwks import CONTRACT_CLAIMS, served_claims

pytestmark = pytest.mark.django_db

# Each declared provider, the subject its fake's tokens carry, and the client they name.
SUBJECTS = {
    "okta": (fakes.OIDC_SUBJECT, fakes.OIDC_CLIENT_ID),
    "customers": (fakes.USER_OID, "e2e2e2e2-0000-4000-8000-000000000001"),
    "consumers": (fakes.USER_OID, "f3f3f3f3-0000-4000-8000-000000000001"),
}
FAKE_OF = {"okta": "oidc", "customers": "external", "consumers": "b2c"}


@pytest.fixture
def policy(fake_providers) -> None:
    """Orders read access in tenant acme for each provider's user, as a policy file grants it."""
    grants = [
        {"tenant": "acme", "role": "viewer", "provider": name, "user": subject}
        for name, (subject, _) in SUBJECTS.items()
    ]
    policy_import(
        document={
            "permissions": [{"code": "orders.read", "description": "", "requires_feature": None}],
            "audiences": [{"id": "api://orders", "name": "Orders API", "permissions": ["orders.read"]}],
            "roles": [{"slug": "viewer", "name": "Viewer", "permissions": ["orders.read"], "tenant": None}],
            "tenants": [{"slug": "acme", "name": "Acme", "status": "active", "features": []}],
            "grants": grants,
        }
    )


def refused(response) -> str:
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["error"] == "invalid_request"
    assert "eyJ" not in body["error_description"]
    return body["error_description"]


@pytest.mark.parametrize("name", list(SUBJECTS))
def test_each_kind_of_provider_s_token_is_exchanged_for_ours_unchanged(
    client, exchange, fake_providers, policy, name
):
    fake = getattr(fake_providers, FAKE_OF[name])
    subject, client_id = SUBJECTS[name]

    response = exchange(fake.mint())

    assert response.status_code == 200, response.content
    claims = served_claims(client, response.json()["access_token"])
    principal = Principal.objects.get(provider=name, subject=subject)
    assert claims["sub"] == str(principal.id) != subject
    assert (claims["client_id"], claims["tenant"], claims["roles"]) == (client_id, "acme", ["viewer"])
    assert claims["scope"] == "orders.read"
    # The contract's claims only: nothing of the provider (its name, issuer or subject) leaks.
    assert set(claims) == CONTRACT_CLAIMS


def test_a_b2c_token_from_a_user_flow_that_is_not_accepted_gets_nothing(exchange, fake_providers, policy):
    description = refused(exchange(fake_providers.b2c.mint(tfp=fakes.RESET_FLOW)))

    assert description == "subject_token rejected: the token comes from a user flow that is not accepted"
    assert fake_providers.total_fetches == 0


def test_a_token_signed_with_another_provider_s_key_under_a_shared_kid_gets_nothing(
    exchange, fake_providers, policy
):
    b2c_key = rsa_key()
    fake_providers.external.keys = [("shared-kid", rsa_key())]
    fake_providers.b2c.keys = [("shared-kid", b2c_key)]
    assert exchange(fake_providers.b2c.mint()).status_code == 200

    description = refused(exchange(fake_providers.external.mint(key=b2c_key)))

    assert description == "subject_token rejected: the token's signature is not valid"


def test_metadata_naming_another_issuer_gets_its_tokens_refused(exchange, fake_providers, policy):
    fake_providers.oidc.metadata_issuer = fake_providers.external.issuer

    description = refused(exchange(fake_providers.oidc.mint()))

    assert "discovery document is refused" in description


def test_keys_published_off_the_provider_s_origin_are_never_used(exchange, fake_providers, policy):
    attacker_key = ec_key()
    fake_providers.attacker.keys = [(fake_providers.oidc.signing[0], attacker_key)]
    fake_providers.oidc.jwks_uri = fake_providers.attacker.jwks_url()

    description = refused(exchange(fake_providers.oidc.mint(key=attacker_key)))

    assert "discovery document is refused" in description
    assert fake_providers.attacker.total_fetches == 0


def test_hs256_signed_with_a_generic_provider_s_public_key_gets_nothing(exchange, fake_providers, policy):
    kid, key = fake_providers.oidc.signing
    secret = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = f"{b64url_json({'alg': 'HS256', 'kid': kid})}.{b64url_json(fake_providers.oidc.claims())}"
    token = f"{signing_input}.{b64url(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())}"

    assert refused(exchange(token)) == "subject_token rejected: only ES256 signatures are accepted"


def test_an_unsigned_token_gets_nothing(exchange, fake_providers, policy):
    claims = fake_providers.external.claims()
    token = (
        f"{b64url_json({'alg': 'none', 'kid': fake_providers.external.signing[0]})}.{b64url_json(claims)}."
    )

    assert refused(exchange(token)) == "subject_token rejected: only RS256 signatures are accepted"
    assert fake_providers.total_fetches == 0
