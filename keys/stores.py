"""Key stores: where private keys live and how they sign, chosen by ``KEY_STORE``.

A store never hands out a private key: it creates one (returning only the public JWK and an
opaque reference to keep in the database) and signs bytes with it. That is the shape a remote
store such as Azure Key Vault needs, so it can replace the local store without touching callers.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from keys.errors import KeyDecryptionFailed
from lib.jwa import SIGNING_ALGORITHMS

# 3072-bit RSA: NIST SP 800-57's size for use beyond 2030 (128-bit security, like P-256).
RSA_KEY_SIZE = 3072


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _uint(number: int, length: int | None = None) -> bytes:
    return number.to_bytes(length or max(1, (number.bit_length() + 7) // 8), "big")


def jwk_thumbprint(jwk: dict[str, str]) -> str:
    """RFC 7638 SHA-256 thumbprint of a public JWK, base64url without padding."""
    required = {"EC": ("crv", "kty", "x", "y"), "RSA": ("e", "kty", "n")}[jwk["kty"]]
    canonical = json.dumps({name: jwk[name] for name in required}, separators=(",", ":"), sort_keys=True)
    return b64url(hashlib.sha256(canonical.encode("ascii")).digest())


def public_jwk(public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey) -> dict[str, str]:
    """The public members of a key as a JWK (RFC 7518 §6), without kid/use/alg."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        numbers = public_key.public_numbers()
        return {
            "kty": "EC",
            "crv": "P-256",
            "x": b64url(_uint(numbers.x, 32)),
            "y": b64url(_uint(numbers.y, 32)),
        }
    rsa_numbers = public_key.public_numbers()
    return {"kty": "RSA", "n": b64url(_uint(rsa_numbers.n)), "e": b64url(_uint(rsa_numbers.e))}


@dataclass(frozen=True)
class NewKey:
    """A key a store just created: what the database keeps about it."""

    kid: str
    algorithm: str
    public_jwk: dict[str, str]
    reference: bytes  # opaque to callers: the sealed private key, or a remote key id


class Signer(ABC):
    """Signs JWS signing input with one key; the private key stays inside."""

    kid: str
    algorithm: str

    @abstractmethod
    def sign(self, data: bytes) -> bytes:
        """The JWS signature (RFC 7518 §3) of ``data``."""


class KeyStore(ABC):
    """Creates keys and signs with them without exporting private material."""

    name: str

    @abstractmethod
    def create(self, *, algorithm: str) -> NewKey:
        """Create a key for ``algorithm`` (ES256, RS256 or PS256)."""

    @abstractmethod
    def signer(self, *, kid: str, algorithm: str, reference: bytes) -> Signer:
        """A signer for a stored key; raises KeyDecryptionFailed when the key cannot be opened."""


class _LocalSigner(Signer):
    def __init__(
        self, *, kid: str, algorithm: str, private_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    ):
        self.kid = kid
        self.algorithm = algorithm
        self._private_key = private_key

    def sign(self, data: bytes) -> bytes:
        key = self._private_key
        if isinstance(key, ec.EllipticCurvePrivateKey) and self.algorithm == "ES256":
            r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
            return _uint(r, 32) + _uint(s, 32)
        if isinstance(key, rsa.RSAPrivateKey) and self.algorithm == "RS256":
            return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        if isinstance(key, rsa.RSAPrivateKey) and self.algorithm == "PS256":
            pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=hashes.SHA256.digest_size)
            return key.sign(data, pss, hashes.SHA256())
        # The key type is bound to the algorithm: never sign with a mismatched pair.
        raise ValueError(f"key {self.kid} cannot sign {self.algorithm}")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.algorithm} {self.kid}>"


class LocalKeyStore(KeyStore):
    """Private keys in the database, sealed with AES-256-GCM under keys derived from KEY_ENCRYPTION_KEY.

    A sealed key is ``version(1) | secret fingerprint(8) | nonce(12) | ciphertext+tag``, with the
    kid as associated data, so a sealed blob cannot be swapped onto another key row. The first
    secret seals; every configured secret unseals (the fingerprint picks the right one).
    """

    name = "local"
    VERSION = b"\x01"

    def __init__(self, secrets: list[str] | None = None) -> None:
        secrets = list(settings.KEY_ENCRYPTION_KEYS if secrets is None else secrets)
        if not secrets:
            raise ImproperlyConfigured("KEY_ENCRYPTION_KEY: required by KEY_STORE=local")
        self._keys = [
            (self._derive(secret, b"fingerprint")[:8], AESGCM(self._derive(secret, b"aes-gcm")))
            for secret in secrets
        ]

    @staticmethod
    def _derive(secret: str, purpose: bytes) -> bytes:
        info = b"token-issuer signing key " + purpose
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info)
        return hkdf.derive(secret.encode("utf-8"))

    def create(self, *, algorithm: str) -> NewKey:
        if algorithm not in SIGNING_ALGORITHMS:
            raise ValueError(f"unsupported algorithm {algorithm!r}")
        private_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
        if algorithm == "ES256":
            private_key = ec.generate_private_key(ec.SECP256R1())
        else:
            private_key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_KEY_SIZE)
        jwk = public_jwk(private_key.public_key())
        kid = jwk_thumbprint(jwk)
        der = private_key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        sealed = self.seal(kid=kid, private_der=der)
        return NewKey(kid=kid, algorithm=algorithm, public_jwk=jwk, reference=sealed)

    def signer(self, *, kid: str, algorithm: str, reference: bytes) -> Signer:
        der = self.unseal(kid=kid, sealed=reference)
        private_key = serialization.load_der_private_key(der, password=None)
        if not isinstance(private_key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise KeyDecryptionFailed(kid)
        return _LocalSigner(kid=kid, algorithm=algorithm, private_key=private_key)

    def seal(self, *, kid: str, private_der: bytes) -> bytes:
        fingerprint, aead = self._keys[0]
        nonce = os.urandom(12)
        return self.VERSION + fingerprint + nonce + aead.encrypt(nonce, private_der, kid.encode("ascii"))

    def unseal(self, *, kid: str, sealed: bytes) -> bytes:
        sealed = bytes(sealed)
        if sealed[:1] != self.VERSION or len(sealed) < 1 + 8 + 12 + 16:
            raise KeyDecryptionFailed(kid)
        fingerprint, nonce, ciphertext = sealed[1:9], sealed[9:21], sealed[21:]
        for candidate, aead in self._keys:
            if candidate == fingerprint:
                try:
                    return aead.decrypt(nonce, ciphertext, kid.encode("ascii"))
                except InvalidTag:
                    break
        raise KeyDecryptionFailed(kid)

    def reseal(self, *, kid: str, sealed: bytes) -> bytes | None:
        """The key sealed under the first secret, or None when it already is."""
        if bytes(sealed)[1:9] == self._keys[0][0]:
            return None
        return self.seal(kid=kid, private_der=self.unseal(kid=kid, sealed=sealed))


STORES: dict[str, type[KeyStore]] = {"local": LocalKeyStore}
# Named in settings already; the store itself comes in a later release (signing inside the vault).
NOT_YET_AVAILABLE = ("azure-keyvault",)


def key_store_get(name: str | None = None) -> KeyStore:
    """The store named by ``name`` or ``KEY_STORE``."""
    name = name or settings.KEY_STORE
    if name in NOT_YET_AVAILABLE:
        raise ImproperlyConfigured(f"KEY_STORE: {name} is not available yet; use KEY_STORE=local")
    try:
        store_class = STORES[name]
    except KeyError:
        raise ImproperlyConfigured(f"KEY_STORE: expected one of {', '.join(STORES)}, got {name!r}") from None
    return store_class()
