"""Validation of Microsoft Entra ID access tokens: ``entra_token_validate`` and its template method.

``EntraTokenValidator.validate`` runs small overridable steps in a fixed order: size, parse, header
rules, directory choice (from the unverified ``tid``, before any network call), key lookup in that
directory's JWKS, RS256 signature, then the pure claim rules of ``accounts.claims``. Subclass the
step you need (another directory source, another key store); don't copy the flow.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from collections.abc import Callable, Mapping

import jwt
from django.conf import settings

from accounts.claims import ClaimRules, EntraIdentity, TokenRejected, claims_evaluate, directory_of
from accounts.dev_directory import DEV_TENANT_ID, dev_directory_enabled, dev_signing_key_get
from accounts.jwks import JwksCache, JwksUnavailable, SigningKey

__all__ = ["EntraIdentity", "EntraTokenValidator", "TokenRejected", "entra_token_validate", "jwks_cache"]

SEGMENT = re.compile(r"^[A-Za-z0-9_-]*$")
# Entra's kids are base64url thumbprints; anything else (paths, quotes, spaces) is refused unread.
KID = re.compile(r"^[A-Za-z0-9_=.-]{1,128}$")
# Headers that carry or point at key material. Entra never sends them, so their mere presence marks a
# forged or confused token: refusing it outright leaves no doubt that any code path could honour them.
KEY_CARRYING_HEADERS = frozenset({"jku", "x5u", "x5c", "jwk"})
REQUIRED_CLAIMS = ["exp", "nbf", "iat", "iss", "aud", "tid", "oid"]

jwks_cache = JwksCache()


class EntraTokenValidator:
    """Turns an Entra access token into an ``EntraIdentity`` or raises ``TokenRejected``.

    Seams for tests: ``timer`` (the clock of the lifetime rules), ``jwks`` (the key cache).
    """

    timer: Callable[[], float] = time.time
    max_length = 16 * 1024
    algorithm = "RS256"

    def __init__(self, *, jwks: JwksCache | None = None, timer: Callable[[], float] | None = None) -> None:
        self.jwks = jwks if jwks is not None else jwks_cache
        if timer is not None:
            self.timer = timer

    def validate(self, token: object) -> EntraIdentity:
        header, unverified = self.token_parse(token)
        self.header_check(header)
        rules = self.rules()
        tid = directory_of(unverified, rules=rules)
        key = self.key_find(tid=tid, kid=header["kid"], rules=rules)
        claims = self.signature_verify(token, key=key)  # type: ignore[arg-type]  # token_parse proved str
        if claims.get("tid") != tid:
            raise TokenRejected("tenant", "the token's directory changed under verification")
        return claims_evaluate(claims=claims, rules=rules, now=self.timer(), key_issuer=key.issuer)

    def rules(self) -> ClaimRules:
        tenant_ids = set(settings.ENTRA_TENANT_ID)
        if dev_directory_enabled():
            tenant_ids.add(DEV_TENANT_ID)
        return ClaimRules(
            authority=settings.ENTRA_AUTHORITY,
            tenant_ids=frozenset(tenant_ids),
            audiences=frozenset(settings.ENTRA_AUDIENCE),
            required_scopes=frozenset(settings.ENTRA_REQUIRED_SCOPES),
            required_roles=frozenset(settings.ENTRA_REQUIRED_ROLES),
            allow_v1=settings.ENTRA_ALLOW_V1_TOKENS,
        )

    def token_parse(self, token: object) -> tuple[dict, dict]:
        """The header and the UNVERIFIED payload; size capped before any parsing."""
        if not isinstance(token, str) or not token:
            raise TokenRejected("malformed", "the token is not a JWT")
        if len(token) > self.max_length:
            raise TokenRejected("too_large", f"the token is longer than {self.max_length} characters")
        parts = token.split(".")
        if len(parts) != 3 or not all(SEGMENT.match(part) for part in parts) or not parts[0] or not parts[1]:
            raise TokenRejected("malformed", "the token is not a signed JWT (three base64url parts)")
        return _json_object(parts[0]), _json_object(parts[1])

    def header_check(self, header: Mapping[str, object]) -> None:
        """RS256 only, refused before any key lookup; no key-carrying headers; no ``crit``."""
        if header.get("alg") != self.algorithm:
            raise TokenRejected("algorithm", "only RS256 signatures are accepted")
        if KEY_CARRYING_HEADERS & header.keys():
            raise TokenRejected("header", "keys are taken only from the directory's JWKS (jku/x5u/x5c/jwk)")
        if "crit" in header:
            # We implement no JWS extension: any critical one is one we don't understand (RFC 7515 4.1.11).
            raise TokenRejected("header", "the token has critical header extensions")
        kid = header.get("kid")
        if not isinstance(kid, str) or not KID.match(kid):
            raise TokenRejected("header", "the token has no usable key id (kid)")

    def key_find(self, *, tid: str, kid: str, rules: ClaimRules) -> SigningKey:
        """The key ``kid`` from directory ``tid``'s own JWKS (or the development directory)."""
        if tid == DEV_TENANT_ID and dev_directory_enabled():
            key = dev_signing_key_get(kid=kid)
        else:
            try:
                key = self.jwks.key_get(authority=rules.authority, tid=tid, kid=kid)
            except JwksUnavailable:
                raise TokenRejected(
                    "jwks_unavailable", "the identity provider's keys are unavailable; try again later"
                ) from None
        if key is None:
            raise TokenRejected("kid_unknown", "its directory publishes no such signing key")
        return key

    def signature_verify(self, token: str, *, key: SigningKey) -> dict:
        """Verify RS256 with the key object (never a PyJWK); lifetime is the claim rules' job."""
        try:
            return jwt.decode(
                token,
                key=key.public_key,
                algorithms=[self.algorithm],
                options={
                    "verify_signature": True,
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                    "verify_aud": False,
                    "verify_iss": False,
                    "require": REQUIRED_CLAIMS,
                },
            )
        except jwt.MissingRequiredClaimError as exc:
            raise TokenRejected("claims_missing", f"the token has no {exc.claim} claim") from None
        except jwt.InvalidAlgorithmError:
            raise TokenRejected("algorithm", "only RS256 signatures are accepted") from None
        except jwt.InvalidSignatureError:
            raise TokenRejected("signature", "the token's signature is not valid") from None
        except jwt.PyJWTError:
            raise TokenRejected("malformed", "the token is not a valid JWT") from None


def _json_object(segment: str) -> dict:
    try:
        value = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, binascii.Error):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise TokenRejected("malformed", "the token is not a JWT") from None
    if not isinstance(value, dict):
        raise TokenRejected("malformed", "the token is not a JWT")
    return value


_validator = EntraTokenValidator()


def entra_token_validate(*, token: str) -> EntraIdentity:
    """Validate an Entra access token; raises ``TokenRejected`` naming the failed check."""
    return _validator.validate(token)
