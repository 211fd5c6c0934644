"""Tokens signed at the frozen time and checked as a downstream verifier would, against the published JWKS."""

from __future__ import annotations

import json
from datetime import datetime

from joserfc import jwt
from joserfc.jwk import KeySet

from keys import engine
from keys.models import SigningKey
from keys.selectors import jwks_document_get
from keys.services import token_sign
from tests.support.clock import FrozenClock

ALGORITHMS = ["ES256", "RS256", "PS256"]
# The claims of the token we issue (the contract): nothing of the identity provider's leaks into it.
CONTRACT_CLAIMS = frozenset(
    {"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "client_id", "tenant", "roles", "scope"}
)


def published_kids() -> list[str]:
    body, _etag = jwks_document_get()
    return [key["kid"] for key in json.loads(body)["keys"]]


def active_kid() -> str:
    return SigningKey.objects.get(phase=engine.ACTIVE).kid


def sign_at(clock: FrozenClock[datetime], **extra) -> str:
    """A 10-minute token for ``p-1`` issued at the clock's time; ``extra`` claims are added."""
    issued = int(clock.now.timestamp())
    return token_sign(claims={"sub": "p-1", "iat": issued, "exp": issued + 600, **extra})


def verify_at(token: str, clock: FrozenClock[datetime]) -> dict:
    """Verify as a downstream service would at the frozen time: signature from the JWKS, then exp."""
    body, _etag = jwks_document_get()
    decoded = jwt.decode(token, KeySet.import_key_set(json.loads(body)), algorithms=ALGORITHMS)
    jwt.JWTClaimsRegistry(now=int(clock.now.timestamp()), leeway=60).validate(decoded.claims)
    return decoded.claims


def decoded(token: str, key_set: KeySet | None = None) -> jwt.Token:
    """Signature check only, against the published JWKS unless another key set is given."""
    key_set = key_set or KeySet.import_key_set(json.loads(jwks_document_get()[0]))
    return jwt.decode(token, key_set, algorithms=ALGORITHMS)


def header_kid(token: str) -> str:
    return decoded(token).header["kid"]


def served_claims(client, access_token: str) -> dict:
    """Our token's claims, its signature checked by an independent JOSE library (joserfc) against the
    JWKS that ``client`` (Django's test client) is served."""
    key_set = KeySet.import_key_set(client.get("/.well-known/jwks.json").json())
    return jwt.decode(access_token, key_set, algorithms=ALGORITHMS).claims
