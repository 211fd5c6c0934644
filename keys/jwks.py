"""Rendering the JWKS document: public members only, in a stable byte form with a strong ETag."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping

from keys.stores import b64url

# RFC 7517 public members; anything else a stored JWK might hold is never published.
PUBLIC_MEMBERS = {"EC": ("kty", "crv", "x", "y"), "RSA": ("kty", "n", "e")}


def jwk_published(*, kid: str, algorithm: str, jwk: Mapping[str, str]) -> dict[str, str]:
    """The JWK as published: its public members plus kid, use and alg."""
    published = {name: jwk[name] for name in PUBLIC_MEMBERS[jwk["kty"]]}
    published.update({"kid": kid, "use": "sig", "alg": algorithm})
    return published


def jwks_render(keys: Iterable[tuple[str, str, Mapping[str, str]]]) -> str:
    """``{"keys": [...]}`` for (kid, algorithm, public JWK) triples, as compact, sorted JSON."""
    body = {"keys": [jwk_published(kid=kid, algorithm=alg, jwk=jwk) for kid, alg, jwk in keys]}
    return json.dumps(body, separators=(",", ":"), sort_keys=True)


def jwks_etag(body: bytes) -> str:
    """A strong ETag (quotes included) that changes exactly when the body does."""
    return f'"{b64url(hashlib.sha256(body).digest())}"'
