"""Reads on the hot path: the published JWKS and whether a key is active."""

from __future__ import annotations

import logging

from keys import engine
from keys.cache import jwks_cache, jwks_entry_pack, jwks_entry_unpack
from keys.errors import KeyDecryptionFailed
from keys.integrity import UnknownSecret, jwks_document_authenticator, jwks_document_message, key_binder
from keys.jwks import jwks_etag, jwks_render
from keys.models import JwksDocument, SigningKey

logger = logging.getLogger(__name__)

JWKS_CACHE_KEY = "keys:jwks:current"
# Publishing refreshes the entry at once; the short lifetime bounds staleness for per-process caches.
JWKS_CACHE_SECONDS = 5
EMPTY_JWKS = b'{"keys":[]}'
# A document that fails its MAC is skipped for the one before it, this many versions deep.
JWKS_DOCUMENTS_TRIED = 3


def jwks_document_get() -> tuple[bytes, str]:
    """(body, etag) of the latest published JWKS: one cache read, one query on a miss.

    Only what this service authenticated is served: the cached entry and the stored documents carry
    MACs under KEY_ENCRYPTION_KEY; when no recent document verifies, the JWKS is rendered from the
    key rows whose binding verifies.
    """
    cache = jwks_cache()
    cached = cache.get(JWKS_CACHE_KEY)
    if cached is not None and (entry := jwks_entry_unpack(cached)) is not None:
        _version, body, etag = entry
        return body, etag
    version, body, etag = _jwks_from_database()
    cache.set(JWKS_CACHE_KEY, jwks_entry_pack(version=version, body=body, etag=etag), JWKS_CACHE_SECONDS)
    return body, etag


def jwks_document_verified(*, version: int, body: str, etag: str, mac: bytes) -> bool:
    """True when this service stored the document (its MAC verifies under a configured secret)."""
    message = jwks_document_message(version=version, etag=etag, body=body)
    try:
        return jwks_document_authenticator().verify(message, bytes(mac))
    except UnknownSecret:
        return False


def _jwks_from_database() -> tuple[int, bytes, str]:
    rows = list(
        JwksDocument.objects.order_by("-version").values_list("version", "body", "etag", "mac")[
            :JWKS_DOCUMENTS_TRIED
        ]
    )
    if not rows:
        return 0, EMPTY_JWKS, jwks_etag(EMPTY_JWKS)
    for version, body, etag, mac in rows:
        if jwks_document_verified(version=version, body=body, etag=etag, mac=bytes(mac)):
            if version != rows[0][0]:
                logger.error("JWKS document v%s failed its MAC; serving v%s", rows[0][0], version)
            return version, body.encode("utf-8"), etag
        logger.error("JWKS document v%s failed its MAC: not served", version)
    rendered = jwks_render(published_keys_bound()).encode("utf-8")
    return 0, rendered, jwks_etag(rendered)


def published_keys_bound() -> list[tuple[str, str, dict[str, str]]]:
    """(kid, algorithm, public JWK) of the published keys whose binding verifies, oldest first."""
    binder = key_binder()
    bound = []
    rows = SigningKey.objects.filter(phase__in=engine.PUBLISHED_PHASES).order_by("created_at", "kid")
    for kid, algorithm, jwk, store, reference, binding in rows.values_list(
        "kid", "algorithm", "public_jwk", "store", "store_reference", "binding"
    ):
        try:
            binder.check(
                store=store,
                kid=kid,
                algorithm=algorithm,
                jwk=jwk,
                reference=bytes(reference),
                binding=bytes(binding),
            )
        except KeyDecryptionFailed as failed:  # KeyIntegrityFailed included
            logger.error("%s", failed)
            continue
        bound.append((kid, algorithm, jwk))
    return bound


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
