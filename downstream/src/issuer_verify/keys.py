"""The issuer's public keys: JWKs (RFC 7517/7518) parsed once per fetch, and signature checks by alg.

A key's algorithm is bound when the JWKS is read, from the JWK's own ``alg`` and ``kty``: an ES256
key is an EC P-256 key, an RS256 or PS256 key is RSA of at least 2048 bits. The token's ``alg`` must
equal that algorithm; the signature scheme is then fixed in code, never chosen by the token.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from issuer_verify.errors import InvalidToken
from issuer_verify.jose import KID, SUPPORTED_ALGORITHMS, b64decode

logger = logging.getLogger("issuer_verify")

MIN_RSA_BITS = 2048
MAX_RSA_BITS = 16384
MAX_KEYS = 100
# Members that only a private or symmetric JWK holds: a JWKS carrying them is refused key by key.
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)  # RFC 7518 §3.5: salt = hash size


@dataclass(frozen=True, slots=True)
class VerificationKey:
    """One published key with the algorithm it verifies."""

    kid: str
    algorithm: str
    public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey

    def verify(self, *, algorithm: str, signature: bytes, signing_input: bytes) -> None:
        """Check a JWS signature; ``InvalidToken`` (``key_mismatch`` or ``signature``) if it fails."""
        if algorithm != self.algorithm:
            raise InvalidToken("key_mismatch", "the token's alg differs from the key's")
        try:
            if isinstance(self.public_key, ec.EllipticCurvePublicKey):
                # JWS carries R || S (RFC 7518 §3.4), 32 bytes each for P-256; the library wants DER.
                if len(signature) != 64:
                    raise InvalidSignature
                der = encode_dss_signature(
                    int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
                )
                self.public_key.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
                return
            if len(signature) != (self.public_key.key_size + 7) // 8:
                raise InvalidSignature
            scheme = _PSS if self.algorithm == "PS256" else padding.PKCS1v15()
            self.public_key.verify(signature, signing_input, scheme, hashes.SHA256())
        except (InvalidSignature, ValueError, UnsupportedAlgorithm):
            raise InvalidToken("signature") from None


def jwks_parse(document: Mapping[str, Any]) -> dict[str, VerificationKey]:
    """The usable keys of a JWKS by kid; unusable entries are skipped (and logged), a kid seen twice
    is dropped as ambiguous. Raises ``ValueError`` when nothing usable is left."""
    entries = document.get("keys")
    if not isinstance(entries, list):
        raise ValueError("the JWKS has no keys list")
    keys: dict[str, VerificationKey] = {}
    ambiguous: set[str] = set()
    for entry in entries[:MAX_KEYS]:
        try:
            key = jwk_parse(entry)
        except ValueError as exc:
            logger.warning("issuer_verify: a JWKS entry is skipped (%s)", exc)
            continue
        if key.kid in keys or key.kid in ambiguous:
            ambiguous.add(key.kid)
            keys.pop(key.kid, None)
            continue
        keys[key.kid] = key
    if ambiguous:
        logger.warning("issuer_verify: %d kids appear twice in the JWKS and are not trusted", len(ambiguous))
    if not keys:
        raise ValueError("the JWKS holds no usable signing key")
    return keys


def jwk_parse(jwk: object) -> VerificationKey:
    """One public signing JWK with ``kid`` and ``alg`` from the allow-list; ``ValueError`` otherwise."""
    if not isinstance(jwk, dict):
        raise ValueError("an entry is not a JSON object")
    kid, alg, kty = jwk.get("kid"), jwk.get("alg"), jwk.get("kty")
    if not isinstance(kid, str) or not KID.fullmatch(kid):
        raise ValueError("no usable kid")
    if alg not in SUPPORTED_ALGORITHMS:
        raise ValueError("no alg from the allow-list (ES256, RS256, PS256)")
    if jwk.get("use", "sig") != "sig":
        raise ValueError("not a signature key (use)")
    key_ops = jwk.get("key_ops")
    if key_ops is not None and (not isinstance(key_ops, list) or "verify" not in key_ops):
        raise ValueError("not a verification key (key_ops)")
    if PRIVATE_MEMBERS & jwk.keys():
        raise ValueError("it holds private or symmetric key material")
    if alg == "ES256":
        if kty != "EC" or jwk.get("crv") != "P-256":
            raise ValueError("an ES256 key must be EC P-256")
        x, y = _coordinate(jwk.get("x")), _coordinate(jwk.get("y"))
        # Raises ValueError for a point that is not on the curve.
        public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey = ec.EllipticCurvePublicNumbers(
            x, y, ec.SECP256R1()
        ).public_key()
    else:
        if kty != "RSA":
            raise ValueError(f"an {alg} key must be RSA")
        numbers = rsa.RSAPublicNumbers(_unsigned(jwk.get("e")), _unsigned(jwk.get("n")))
        if not MIN_RSA_BITS <= numbers.n.bit_length() <= MAX_RSA_BITS:
            raise ValueError(f"an RSA key must have {MIN_RSA_BITS} to {MAX_RSA_BITS} bits")
        public_key = numbers.public_key()  # raises ValueError for an even or out-of-range exponent
    return VerificationKey(kid=kid, algorithm=alg, public_key=public_key)


def _member_bytes(value: object) -> bytes:
    if not isinstance(value, str) or not value:
        raise ValueError("a key member is not a base64url string")
    try:
        return b64decode(value)
    except InvalidToken:
        raise ValueError("a key member is not canonical base64url") from None


def _coordinate(value: object) -> int:
    raw = _member_bytes(value)
    if len(raw) != 32:  # RFC 7518 §6.2.1.2: the full coordinate size, leading zeros kept
        raise ValueError("a P-256 coordinate is not 32 bytes")
    return int.from_bytes(raw, "big")


def _unsigned(value: object) -> int:
    raw = _member_bytes(value)
    if raw[0] == 0:  # RFC 7518 §6.3.1: the minimal encoding, no leading zero octet
        raise ValueError("an RSA member has a leading zero octet")
    return int.from_bytes(raw, "big")
