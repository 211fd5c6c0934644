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

from keys.errors import KeyDecryptionFailed, KeyIntegrityFailed
from lib.jwa import SIGNING_ALGORITHMS

# 3072-bit RSA: NIST SP 800-57's size for use beyond 2030 (128-bit security, like P-256).
RSA_KEY_SIZE = 3072


def secret_derive(secret: str, purpose: bytes) -> bytes:
    """A 32-byte key for one purpose from a KEY_ENCRYPTION_KEY secret (HKDF-SHA256, distinct info)."""
    info = b"token-issuer signing key " + purpose
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret.encode("utf-8"))


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

    def disable(self, reference: bytes) -> None:
        """Make a key unusable in the store (a vault disables the version); the local store's key is
        destroyed by erasing its reference, so there is nothing to do here."""
        return None

    @abstractmethod
    def public_jwk_of(self, *, kid: str, reference: bytes) -> dict[str, str]:
        """The public JWK of the private key ``reference`` names, read from the private key itself
        (the proof that a row made before bindings existed publishes its own key)."""


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


class KeyWrapper(ABC):
    """Wraps data keys under a key that never leaves its home (a Key Vault RSA key)."""

    @abstractmethod
    def wrap(self, data_key: bytes) -> tuple[str, bytes]:
        """(the wrapping key's versioned id, the wrapped data key)."""

    @abstractmethod
    def unwrap(self, key_id: str, wrapped: bytes) -> bytes:
        """The data key; raises KeyStoreUnavailable when the vault cannot answer now."""


# Data keys this process unwrapped, by digest of the wrapped blob: each key is unwrapped once.
_unwrapped: dict[bytes, bytes] = {}
_UNWRAPPED_MAX = 64


class LocalKeyStore(KeyStore):
    """Private keys in the database, sealed with AES-256-GCM under keys derived from KEY_ENCRYPTION_KEY.

    A sealed key is ``version(1) | secret fingerprint(8) | nonce(12) | ciphertext+tag``, with the
    kid as associated data, so a sealed blob cannot be swapped onto another key row. The first
    secret seals; every configured secret unseals (the fingerprint picks the right one).

    With a ``wrapper`` (KEY_VAULT_WRAP_KEY), a key is sealed under a random data key that only the
    vault can unwrap, combined (HKDF) with the secret's key: ``2 | fingerprint(8) | len(2) | wrapping
    key id | len(2) | wrapped data key | nonce(12) | ciphertext+tag``. A copy of the database, even
    with KEY_ENCRYPTION_KEY, opens nothing without the vault.
    """

    name = "local"
    VERSION = b"\x01"
    WRAPPED_VERSION = b"\x02"

    def __init__(self, secrets: list[str] | None = None, wrapper: KeyWrapper | None = None) -> None:
        secrets = list(settings.KEY_ENCRYPTION_KEYS if secrets is None else secrets)
        if not secrets:
            raise ImproperlyConfigured("KEY_ENCRYPTION_KEY: required by KEY_STORE=local")
        self._keys = [
            (self._derive(secret, b"fingerprint")[:8], AESGCM(self._derive(secret, b"aes-gcm")))
            for secret in secrets
        ]
        self._salts = {
            self._derive(secret, b"fingerprint")[:8]: self._derive(secret, b"wrapped aes-gcm")
            for secret in secrets
        }
        self.wrapper = wrapper

    @staticmethod
    def _derive(secret: str, purpose: bytes) -> bytes:
        return secret_derive(secret, purpose)

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
        return _LocalSigner(kid=kid, algorithm=algorithm, private_key=self._private_key(kid, reference))

    def public_jwk_of(self, *, kid: str, reference: bytes) -> dict[str, str]:
        return public_jwk(self._private_key(kid, reference).public_key())

    def _private_key(self, kid: str, reference: bytes) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
        der = self.unseal(kid=kid, sealed=reference)
        try:
            private_key = serialization.load_der_private_key(der, password=None)
        except ValueError:
            raise KeyIntegrityFailed(kid, "the sealed key is not a private key") from None
        if not isinstance(private_key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise KeyIntegrityFailed(kid, "the sealed key is not an EC or RSA private key")
        return private_key

    def seal(self, *, kid: str, private_der: bytes) -> bytes:
        fingerprint, aead = self._keys[0]
        nonce = os.urandom(12)
        if self.wrapper is not None:
            data_key = os.urandom(32)
            key_id, wrapped = self.wrapper.wrap(data_key)
            aead = AESGCM(self._wrapped_key(fingerprint, data_key))
            header = _framed(key_id.encode("utf-8")) + _framed(wrapped)
            return (
                self.WRAPPED_VERSION
                + fingerprint
                + header
                + nonce
                + aead.encrypt(nonce, private_der, kid.encode("ascii"))
            )
        return self.VERSION + fingerprint + nonce + aead.encrypt(nonce, private_der, kid.encode("ascii"))

    def _wrapped_key(self, fingerprint: bytes, data_key: bytes) -> bytes:
        hkdf = HKDF(
            algorithm=hashes.SHA256(),
            length=32,
            salt=self._salts[fingerprint],
            info=b"token-issuer wrapped key",
        )
        return hkdf.derive(data_key)

    def _unseal_wrapped(self, kid: str, sealed: bytes) -> bytes:
        fingerprint = sealed[1:9]
        if fingerprint not in self._salts:
            raise KeyDecryptionFailed(kid)
        try:
            key_id, rest = _unframed(sealed[9:])
            wrapped, rest = _unframed(rest)
        except ValueError:
            raise KeyIntegrityFailed(kid, "the sealed key is malformed") from None
        if self.wrapper is None:
            raise KeyDecryptionFailed(
                kid, "it is sealed under the vault: set KEY_VAULT_URL and KEY_VAULT_WRAP_KEY"
            )
        digest = hashlib.sha256(key_id + b"\x00" + wrapped).digest()
        data_key = _unwrapped.get(digest)
        if data_key is None:
            data_key = self.wrapper.unwrap(key_id.decode("utf-8", "replace"), wrapped)
            if len(_unwrapped) >= _UNWRAPPED_MAX:
                _unwrapped.pop(next(iter(_unwrapped)))
            _unwrapped[digest] = data_key
        nonce, ciphertext = rest[:12], rest[12:]
        try:
            return AESGCM(self._wrapped_key(fingerprint, data_key)).decrypt(
                nonce, ciphertext, kid.encode("utf-8")
            )
        except (InvalidTag, ValueError):
            raise KeyIntegrityFailed(kid, "the sealed key does not open: corrupt or moved") from None

    def unseal(self, *, kid: str, sealed: bytes) -> bytes:
        """The private key's DER; KeyDecryptionFailed when no configured secret sealed it (the secret
        is wrong), KeyIntegrityFailed when one did but the blob does not open (corrupt or moved)."""
        sealed = bytes(sealed)
        if sealed[:1] == self.WRAPPED_VERSION and len(sealed) > 9:
            return self._unseal_wrapped(kid, sealed)
        if sealed[:1] != self.VERSION or len(sealed) < 1 + 8 + 12 + 16:
            raise KeyIntegrityFailed(kid, "the sealed key is malformed")
        fingerprint, nonce, ciphertext = sealed[1:9], sealed[9:21], sealed[21:]
        for candidate, aead in self._keys:
            if candidate == fingerprint:
                try:
                    return aead.decrypt(nonce, ciphertext, kid.encode("utf-8"))
                except InvalidTag:
                    raise KeyIntegrityFailed(kid, "the sealed key does not open: corrupt or moved") from None
        raise KeyDecryptionFailed(kid)

    def reseal(self, *, kid: str, sealed: bytes) -> bytes | None:
        """The key sealed under the first secret (and the vault's wrapping key when configured), or
        None when it already is."""
        sealed = bytes(sealed)
        wanted = self.WRAPPED_VERSION if self.wrapper is not None else self.VERSION
        if sealed[1:9] == self._keys[0][0] and sealed[:1] == wanted:
            return None
        return self.seal(kid=kid, private_der=self.unseal(kid=kid, sealed=sealed))


def _framed(data: bytes) -> bytes:
    return len(data).to_bytes(2, "big") + data


def _unframed(data: bytes) -> tuple[bytes, bytes]:
    if len(data) < 2 or len(data) < 2 + int.from_bytes(data[:2], "big"):
        raise ValueError("truncated")
    length = int.from_bytes(data[:2], "big")
    return data[2 : 2 + length], data[2 + length :]


STORE_NAMES = ("local", "azure-keyvault")
_stores: dict[tuple[str, str], KeyStore] = {}


def key_store_get(name: str | None = None) -> KeyStore:
    """The store named by ``name`` or ``KEY_STORE``; a vault store is made once per process and
    vault (its clients keep their connections and tokens)."""
    name = name or settings.KEY_STORE
    if name == "local":
        if settings.KEY_VAULT_WRAP_KEY:
            from keys.vault import vault_key_wrapper

            return LocalKeyStore(wrapper=vault_key_wrapper())
        return LocalKeyStore()
    if name == "azure-keyvault":
        from keys.vault import AzureKeyVaultStore  # the Azure SDK only where the vault is used

        cache_key = (name, f"{settings.KEY_VAULT_URL}|{settings.KEY_VAULT_KEY_NAME}")
        if cache_key not in _stores:
            _stores[cache_key] = AzureKeyVaultStore()
        return _stores[cache_key]
    raise ImproperlyConfigured(f"KEY_STORE: expected one of {', '.join(STORE_NAMES)}, got {name!r}")
