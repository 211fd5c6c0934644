"""The claims of a verified access token (RFC 9068 and the issuer's contract) and the rules they obey."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from issuer_verify.errors import InvalidToken

# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ), separated by single spaces.
SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
REQUIRED_STRINGS = ("sub", "tenant", "jti", "client_id")


@dataclass(frozen=True)
class Claims:
    """A verified token's claims. ``raw`` holds every claim as sent, read-only."""

    subject: str
    tenant: str
    roles: frozenset[str]
    scopes: frozenset[str]
    client_id: str
    audience: tuple[str, ...]
    issuer: str
    expires_at: datetime
    issued_at: datetime
    jwt_id: str
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    def has_scope(self, *scopes: str) -> bool:
        """True when the token carries every one of ``scopes``."""
        return bool(scopes) and self.scopes.issuperset(scopes)

    def has_role(self, *roles: str) -> bool:
        """True when the token carries every one of ``roles``."""
        return bool(roles) and self.roles.issuperset(roles)


def claims_check(claims: dict[str, Any], *, issuer: str, audience: str, now: float, leeway: float) -> Claims:
    """The claims, once issuer, audience, lifetime and the required claims all hold."""
    if claims.get("iss") != issuer:
        raise InvalidToken("issuer")
    aud = claims.get("aud")
    audiences = (aud,) if isinstance(aud, str) else tuple(aud) if isinstance(aud, list) else ()
    if not audiences or not all(isinstance(value, str) for value in audiences) or audience not in audiences:
        raise InvalidToken("audience")
    expires, issued = _numeric_date(claims, "exp"), _numeric_date(claims, "iat")
    if expires is None or issued is None:
        raise InvalidToken("missing_claim", "exp and iat are required")
    if now - leeway >= expires:
        raise InvalidToken("expired")
    not_before = _numeric_date(claims, "nbf")
    if not_before is None and "nbf" in claims:
        raise InvalidToken("missing_claim", "nbf is not a NumericDate")
    if not_before is not None and now + leeway < not_before:
        raise InvalidToken("not_yet_valid")
    if now + leeway < issued:
        raise InvalidToken("issued_in_future")
    for name in REQUIRED_STRINGS:
        value = claims.get(name)
        if not isinstance(value, str) or not value:
            raise InvalidToken("missing_claim", f"{name} is required (a non-empty string)")
    return Claims(
        subject=claims["sub"],
        tenant=claims["tenant"],
        roles=_roles(claims.get("roles")),
        scopes=_scopes(claims.get("scope")),
        client_id=claims["client_id"],
        audience=audiences,
        issuer=issuer,
        expires_at=datetime.fromtimestamp(expires, UTC),
        issued_at=datetime.fromtimestamp(issued, UTC),
        jwt_id=claims["jti"],
        raw=MappingProxyType(claims),
    )


def _numeric_date(claims: Mapping[str, Any], name: str) -> float | None:
    """RFC 7519 NumericDate: a finite JSON number (not a boolean), within datetime's range."""
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value) or not 0 <= value < 253_402_300_800:  # before year 10000
        return None
    return float(value)


def _scopes(value: object) -> frozenset[str]:
    """``scope`` is required: space-separated scope tokens (RFC 6749 §3.3), the empty string none."""
    if not isinstance(value, str):
        raise InvalidToken("missing_claim", "scope is required (a string)")
    if not value:
        return frozenset()
    tokens = value.split(" ")
    if not all(SCOPE_TOKEN.fullmatch(token) for token in tokens):
        raise InvalidToken("missing_claim", "scope is not space-separated scope tokens")
    return frozenset(tokens)


def _roles(value: object) -> frozenset[str]:
    """``roles`` (RFC 9068 §7.2.1.1) is optional: a list of non-empty strings when present."""
    if value is None:
        return frozenset()
    if not isinstance(value, list) or not all(isinstance(role, str) and role for role in value):
        raise InvalidToken("missing_claim", "roles is not a list of strings")
    return frozenset(value)
