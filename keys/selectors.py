"""Reads on the hot path: the published JWKS and whether a key is active."""

from __future__ import annotations

from django.core.cache import cache

from keys import engine
from keys.jwks import jwks_etag
from keys.models import JwksDocument, SigningKey

JWKS_CACHE_KEY = "keys:jwks:current"
# Publishing refreshes the entry at once; the short lifetime bounds staleness for per-process caches.
JWKS_CACHE_SECONDS = 5
EMPTY_JWKS = b'{"keys":[]}'


def jwks_document_get() -> tuple[bytes, str]:
    """(body, etag) of the latest published JWKS: one cache read, one query on a miss."""
    cached = cache.get(JWKS_CACHE_KEY)
    if cached is not None:
        _version, body, etag = cached
        return body, etag
    row = JwksDocument.objects.order_by("-version").values_list("version", "body", "etag").first()
    if row is None:
        version, body, etag = 0, EMPTY_JWKS, jwks_etag(EMPTY_JWKS)
    else:
        version, body, etag = row[0], row[1].encode("utf-8"), row[2]
    cache.set(JWKS_CACHE_KEY, (version, body, etag), JWKS_CACHE_SECONDS)
    return body, etag


def signing_key_state(key: SigningKey) -> engine.KeyState:
    """What the rotation engine knows of one key."""
    return engine.KeyState(
        kid=key.kid,
        phase=key.phase,
        algorithm=key.algorithm,
        published_at=key.published_at,
        activated_at=key.activated_at,
        deactivated_at=key.deactivated_at,
    )


def published_key_states() -> list[engine.KeyState]:
    """The published keys (pending, active, retiring) as the rotation engine sees them: one query."""
    return [signing_key_state(key) for key in SigningKey.objects.filter(phase__in=engine.PUBLISHED_PHASES)]


def signing_key_active_exists() -> bool:
    """True when a key is active (signing is possible)."""
    return SigningKey.objects.filter(phase=engine.ACTIVE).exists()
