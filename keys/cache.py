"""The JWKS in the shared cache: one bytes value carrying a MAC, never a pickled object.

Whoever can write to the cache (Redis in production) must not be able to publish a key, nor run
code here: Django's default Redis serializer unpickles whatever it reads. The ``jwks`` cache alias
uses ``BytesSerializer`` (settings), and every entry is verified before it is served.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.cache import BaseCache, caches

from keys.integrity import UnknownSecret, jwks_cache_authenticator

logger = logging.getLogger(__name__)

JWKS_CACHE_ALIAS = "jwks"
_ENVELOPE = b"jwks1"


class BytesSerializer:
    """A Redis cache serializer for bytes only: stored as they are, read back as they are."""

    def dumps(self, obj: object) -> bytes:
        if not isinstance(obj, bytes):
            raise TypeError("the jwks cache stores bytes only")
        return obj

    def loads(self, data: bytes) -> bytes:
        return bytes(data)


def jwks_cache() -> BaseCache:
    """The ``jwks`` cache (settings), or the default cache where only that one is configured."""
    return caches[JWKS_CACHE_ALIAS if JWKS_CACHE_ALIAS in settings.CACHES else "default"]


def jwks_entry_pack(*, version: int, body: bytes, etag: str) -> bytes:
    """``jwks1 | mac | version etag | body``: the MAC covers everything after it."""
    payload = f"{version} {etag}\n".encode("ascii") + body
    return _ENVELOPE + jwks_cache_authenticator().mac(payload) + payload


def jwks_entry_unpack(entry: object) -> tuple[int, bytes, str] | None:
    """(version, body, etag) of an entry this service wrote; None for anything else (logged)."""
    if not isinstance(entry, bytes) or not entry.startswith(_ENVELOPE):
        logger.warning("the cached JWKS is not one this service wrote; serving it from the database")
        return None
    mac_end = len(_ENVELOPE) + 41
    mac, payload = entry[len(_ENVELOPE) : mac_end], entry[mac_end:]
    try:
        valid = jwks_cache_authenticator().verify(payload, mac)
    except UnknownSecret:
        valid = False
    header, _, body = payload.partition(b"\n")
    version_text, _, etag = header.decode("ascii", "replace").partition(" ")
    if not valid or not version_text.isdigit():
        logger.warning("the cached JWKS failed its MAC; serving it from the database")
        return None
    return int(version_text), body, etag
