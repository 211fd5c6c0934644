"""An identity provider's public keys: its JWKS read by strict rules, and written back for the store.

A key is kept only if it can verify one of the provider's algorithms: RSA keys of 2048 bits or more
for RS256 and PS256, EC keys on P-256 for ES256, meant for signatures (``use`` absent or ``sig``),
and, when the JWK names an ``alg``, for that algorithm only. The key type is bound to the algorithm
again at verification (``ProviderKey.fits``), so a token can never choose how a key is used.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey, RSAPublicNumbers

MIN_RSA_BITS = 2048
RSA_ALGORITHMS = frozenset({"RS256", "PS256"})
EC_ALGORITHMS = frozenset({"ES256"})
P256_COORDINATE_BYTES = 32

PublicKey = RSAPublicKey | ec.EllipticCurvePublicKey


class JwksUnusable(ValueError):
    """The document is no JWKS, or holds no key usable by the provider's algorithms."""


@dataclass(frozen=True)
class ProviderKey:
    """One verification key from a provider's JWKS, with the JWK's own ``issuer`` and ``alg`` if any."""

    kid: str
    public_key: PublicKey
    issuer: str | None = None
    algorithm: str | None = None

    def fits(self, algorithm: str) -> bool:
        """Whether this key may verify an ``algorithm`` signature (RSA for RS/PS, P-256 for ES256)."""
        if self.algorithm is not None and self.algorithm != algorithm:
            return False
        if algorithm in RSA_ALGORITHMS:
            return isinstance(self.public_key, RSAPublicKey)
        if algorithm in EC_ALGORITHMS:
            return isinstance(self.public_key, ec.EllipticCurvePublicKey) and isinstance(
                self.public_key.curve, ec.SECP256R1
            )
        return False


def jwks_parse(
    document: Mapping[str, object], *, max_keys: int, algorithms: Collection[str] = ("RS256",)
) -> dict[str, ProviderKey]:
    """The keys of a JWKS usable by one of ``algorithms``; unusable entries are skipped, none usable
    raises ``JwksUnusable``. The first of two entries with one ``kid`` wins."""
    entries = document.get("keys")
    if not isinstance(entries, list):
        raise JwksUnusable("the JWKS has no keys list")
    keys: dict[str, ProviderKey] = {}
    for jwk in entries[:max_keys]:
        key = _parse_jwk(jwk, algorithms=algorithms)
        if key is not None and key.kid not in keys:
            keys[key.kid] = key
    if not keys:
        raise JwksUnusable(f"the JWKS holds no usable {'/'.join(sorted(algorithms))} signing key")
    return keys


def jwks_document(keys: Mapping[str, ProviderKey]) -> dict:
    """The keys as a JWKS of their public members only, which ``jwks_parse`` reads back."""
    return {"keys": [_public_jwk(key) for key in keys.values()]}


def _parse_jwk(jwk: object, *, algorithms: Collection[str]) -> ProviderKey | None:
    if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig":
        return None
    kid, issuer, algorithm = jwk.get("kid"), jwk.get("issuer"), jwk.get("alg")
    if not isinstance(kid, str) or not kid or (issuer is not None and not isinstance(issuer, str)):
        return None
    if algorithm is not None and algorithm not in algorithms:
        return None
    key_type = jwk.get("kty")
    try:
        if key_type == "RSA" and RSA_ALGORITHMS & set(algorithms):
            public_key: PublicKey = RSAPublicNumbers(
                _b64_int(jwk.get("e")), _b64_int(jwk.get("n"))
            ).public_key()
            if public_key.key_size < MIN_RSA_BITS:
                return None
        elif key_type == "EC" and jwk.get("crv") == "P-256" and EC_ALGORITHMS & set(algorithms):
            x, y = _coordinate(jwk.get("x")), _coordinate(jwk.get("y"))
            # Raises ValueError for a point that is not on the curve (an invalid-curve attack).
            public_key = ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
        else:
            return None
    except (ValueError, binascii.Error):
        return None
    key = ProviderKey(kid=kid, public_key=public_key, issuer=issuer, algorithm=algorithm)
    return key if any(key.fits(name) for name in algorithms) else None


def _public_jwk(key: ProviderKey) -> dict[str, str]:
    jwk: dict[str, str]
    if isinstance(key.public_key, RSAPublicKey):
        numbers = key.public_key.public_numbers()
        jwk = {
            "kty": "RSA",
            "use": "sig",
            "kid": key.kid,
            "n": _b64_uint(numbers.n),
            "e": _b64_uint(numbers.e),
        }
    else:
        point = key.public_key.public_numbers()
        jwk = {
            "kty": "EC",
            "use": "sig",
            "kid": key.kid,
            "crv": "P-256",
            "x": _b64_uint(point.x, P256_COORDINATE_BYTES),
            "y": _b64_uint(point.y, P256_COORDINATE_BYTES),
        }
    if key.algorithm is not None:
        jwk["alg"] = key.algorithm
    if key.issuer is not None:
        jwk["issuer"] = key.issuer
    return jwk


def _b64_uint(number: int, length: int | None = None) -> str:
    raw = number.to_bytes(length or (number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64_bytes(value: object) -> bytes:
    if not isinstance(value, str) or not value:
        raise ValueError("not a base64url string")
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def _b64_int(value: object) -> int:
    return int.from_bytes(_b64_bytes(value), "big")


def _coordinate(value: object) -> int:
    # RFC 7518 §6.2.1.2: a P-256 coordinate is exactly 32 octets, leading zeros kept.
    raw = _b64_bytes(value)
    if len(raw) != P256_COORDINATE_BYTES:
        raise ValueError("not a P-256 coordinate")
    return int.from_bytes(raw, "big")
