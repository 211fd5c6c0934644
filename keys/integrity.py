"""Authenticating what the service stores: key rows, JWKS documents and the cached JWKS.

Whoever can write to the database or the cache must not be able to publish a key. Every record
that leads to a published key carries a MAC under a key derived (HKDF, one ``info`` per purpose)
from KEY_ENCRYPTION_KEY, a secret that lives outside the database and the cache. A MAC is
``version(1) | secret fingerprint(8) | HMAC-SHA256(32)``: the first secret signs, every configured
secret verifies (the fingerprint picks the right one), as for sealed keys.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from keys.errors import KeyDecryptionFailed, KeyIntegrityFailed
from keys.jwks import PUBLIC_MEMBERS
from keys.stores import jwk_thumbprint, secret_derive

VERSION = b"\x01"
MAC_LENGTH = 1 + 8 + 32
# The key types each algorithm may use: a row claiming ES256 for an RSA key is refused.
KEY_TYPES = {"ES256": "EC", "RS256": "RSA", "PS256": "RSA"}


class UnknownSecret(Exception):
    """The MAC was made under a secret that is not configured (or the bytes are not a MAC at all)."""


class Authenticator:
    """MACs for one purpose under KEY_ENCRYPTION_KEY."""

    def __init__(self, purpose: bytes, secrets: list[str] | None = None) -> None:
        secrets = list(settings.KEY_ENCRYPTION_KEYS if secrets is None else secrets)
        if not secrets:
            raise ImproperlyConfigured("KEY_ENCRYPTION_KEY: required to authenticate the signing keys")
        self._purpose = purpose
        self._keys = [
            (secret_derive(secret, b"fingerprint")[:8], secret_derive(secret, purpose)) for secret in secrets
        ]

    def mac(self, message: bytes) -> bytes:
        fingerprint, key = self._keys[0]
        return VERSION + fingerprint + hmac.digest(key, self._purpose + b"\x00" + message, "sha256")

    def verify(self, message: bytes, mac: bytes) -> bool:
        """True when ``mac`` is this message's; raises UnknownSecret when no configured secret made it."""
        mac = bytes(mac)
        if len(mac) != MAC_LENGTH or mac[:1] != VERSION:
            return False
        for fingerprint, key in self._keys:
            if fingerprint == mac[1:9]:
                expected = hmac.digest(key, self._purpose + b"\x00" + message, "sha256")
                return hmac.compare_digest(expected, mac[9:])
        raise UnknownSecret()

    def is_current(self, mac: bytes) -> bool:
        """True when ``mac`` was made under the first secret."""
        return bytes(mac)[1:9] == self._keys[0][0]


def _canonical(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=True).encode("ascii")


def key_binding_message(
    *, store: str, kid: str, algorithm: str, jwk: Mapping[str, str], reference: bytes
) -> bytes:
    """What a key row's binding authenticates: the public key, its kid and algorithm, and where the
    private key is (a digest of the sealed key or the vault key id)."""
    members = {name: jwk[name] for name in PUBLIC_MEMBERS[jwk["kty"]]}
    return _canonical(
        {
            "store": store,
            "kid": kid,
            "alg": algorithm,
            "jwk": members,
            "reference": hashlib.sha256(bytes(reference)).hexdigest(),
        }
    )


def public_jwk_checked(*, kid: str, algorithm: str, jwk: object) -> dict[str, str]:
    """The public JWK of a row when it is well formed, fits the algorithm and the kid is its RFC 7638
    thumbprint; raises KeyIntegrityFailed otherwise."""
    if not isinstance(jwk, dict) or jwk.get("kty") not in PUBLIC_MEMBERS:
        raise KeyIntegrityFailed(kid, "the public key is not a JWK")
    members = PUBLIC_MEMBERS[jwk["kty"]]
    if not all(isinstance(jwk.get(name), str) for name in members):
        raise KeyIntegrityFailed(kid, "the public key is not a JWK")
    if KEY_TYPES.get(algorithm) != jwk["kty"] or (jwk["kty"] == "EC" and jwk["crv"] != "P-256"):
        raise KeyIntegrityFailed(kid, f"a {jwk['kty']} key cannot be {algorithm}")
    if not hmac.compare_digest(jwk_thumbprint(jwk).encode("ascii"), kid.encode("utf-8")):
        raise KeyIntegrityFailed(kid, "the kid is not the RFC 7638 thumbprint of the public key")
    return {name: jwk[name] for name in members}


class KeyBinder:
    """Binds a key row's public key to its private key, and checks that binding."""

    def __init__(self, secrets: list[str] | None = None) -> None:
        self._auth = Authenticator(b"token-issuer signing key binding", secrets)

    def bind(
        self, *, store: str, kid: str, algorithm: str, jwk: Mapping[str, str], reference: bytes
    ) -> bytes:
        message = key_binding_message(store=store, kid=kid, algorithm=algorithm, jwk=jwk, reference=reference)
        return self._auth.mac(message)

    def check(
        self, *, store: str, kid: str, algorithm: str, jwk: object, reference: bytes, binding: bytes
    ) -> None:
        """Raise KeyIntegrityFailed when the row is not bound, KeyDecryptionFailed when it was bound
        under a secret that is not configured; an empty binding (a row older than bindings) is the
        caller's to prove (``KeyStore.public_jwk_of``)."""
        members = public_jwk_checked(kid=kid, algorithm=algorithm, jwk=jwk)
        message = key_binding_message(
            store=store, kid=kid, algorithm=algorithm, jwk=members, reference=reference
        )
        try:
            if not self._auth.verify(message, binding):
                raise KeyIntegrityFailed(kid, "its public key is not bound to its private key")
        except UnknownSecret:
            raise KeyDecryptionFailed(kid) from None

    def is_current(self, binding: bytes) -> bool:
        return self._auth.is_current(binding)


def jwks_document_message(*, version: int, etag: str, body: str) -> bytes:
    return _canonical(
        {"version": version, "etag": etag, "body": hashlib.sha256(body.encode("utf-8")).hexdigest()}
    )


@lru_cache(maxsize=16)
def _authenticator(purpose: bytes, secrets: tuple[str, ...]) -> Authenticator:
    return Authenticator(purpose, list(secrets))


def jwks_document_authenticator() -> Authenticator:
    return _authenticator(b"token-issuer jwks document", tuple(settings.KEY_ENCRYPTION_KEYS))


def jwks_cache_authenticator() -> Authenticator:
    return _authenticator(b"token-issuer jwks cache", tuple(settings.KEY_ENCRYPTION_KEYS))


def key_binder() -> KeyBinder:
    return _binder(tuple(settings.KEY_ENCRYPTION_KEYS))


@lru_cache(maxsize=16)
def _binder(secrets: tuple[str, ...]) -> KeyBinder:
    return KeyBinder(list(secrets))
