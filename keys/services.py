"""Key management use cases: rotate, revoke, publish the JWKS, sign tokens, re-encrypt.

Every write runs in one transaction holding the rotation lock row, so several workers or beats
running at once still apply each decision exactly once.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from keys import engine
from keys.errors import KeyNotPublished, NoActiveKey, UnknownKey
from keys.jwks import jwks_etag, jwks_render
from keys.models import JwksDocument, KeyRotationLock, SigningKey
from keys.selectors import JWKS_CACHE_KEY, JWKS_CACHE_SECONDS, signing_key_state
from keys.stores import KeyStore, LocalKeyStore, Signer, b64url, key_store_get

# Clock skew a downstream verifier may allow past ``exp``; a retiring key outlives it. Not the same
# thing as accounts.claims.CLOCK_LEEWAY (30 s, what we allow Entra's clock): verifiers are not ours to
# configure, so this errs generous, and being generous only keeps a retiring key published longer.
VERIFIER_LEEWAY = timedelta(seconds=60)

# The wall clock the key services read; tests replace it, as any reader's ``clock``, to move time by
# hand instead of sleeping.
clock: Callable[[], datetime] = timezone.now


@dataclass(frozen=True)
class RotationResult:
    """What one rotation run did (kids per transition) and the JWKS version it left published."""

    created: tuple[str, ...] = ()
    activated: tuple[str, ...] = ()
    retired: tuple[str, ...] = ()
    jwks_version: int | None = None

    @property
    def changed(self) -> bool:
        return bool(self.created or self.activated or self.retired)


class ActiveSignerCache:
    """The decrypted active key, kept per process and re-checked at most every ``recheck_seconds``.

    One small query per process per interval instead of one per token; a rotation or revocation
    reaches every worker within ``recheck_seconds`` (the engine keeps retiring keys published for
    that long on top of the token lifetime).
    """

    RECHECK_SECONDS = 5.0
    clock: Callable[[], float] = time.monotonic

    def __init__(self, *, recheck_seconds: float = RECHECK_SECONDS):
        self.recheck_seconds = recheck_seconds
        self._lock = threading.Lock()
        # (signer or None, checked at): replaced whole, so a reader never sees half an update.
        self._state: tuple[Signer | None, float] | None = None

    def get(self) -> Signer:
        """The active key's signer; raises NoActiveKey when none is active."""
        state = self._state
        if self._stale(state):
            with self._lock:
                state = self._state
                if self._stale(state):
                    state = (self._load(state[0] if state else None), self.clock())
                    self._state = state
        signer = state[0] if state else None
        if signer is None:
            raise NoActiveKey()
        return signer

    def clear(self) -> None:
        self._state = None

    def _stale(self, state: tuple[Signer | None, float] | None) -> bool:
        return state is None or self.clock() - state[1] >= self.recheck_seconds

    @staticmethod
    def _load(current: Signer | None) -> Signer | None:
        row = (
            SigningKey.objects.filter(phase=engine.ACTIVE)
            .values_list("kid", "algorithm", "store", "store_reference")
            .first()
        )
        if row is None:
            return None
        kid, algorithm, store_name, reference = row
        if current is not None and current.kid == kid:
            return current
        return key_store_get(store_name).signer(kid=kid, algorithm=algorithm, reference=bytes(reference))


active_signer_cache = ActiveSignerCache()


def token_sign(*, claims: dict[str, Any]) -> str:
    """A compact JWS of ``claims`` signed with the active key; header ``typ: at+jwt``, ``kid``, ``alg``."""
    if not isinstance(claims, dict):
        raise TypeError("claims must be a dict")
    signer = active_signer_cache.get()
    header = {"alg": signer.algorithm, "kid": signer.kid, "typ": "at+jwt"}
    signing_input = f"{_b64json(header)}.{_b64json(claims)}".encode("ascii")
    return f"{signing_input.decode('ascii')}.{b64url(signer.sign(signing_input))}"


def _b64json(value: dict[str, Any]) -> str:
    return b64url(json.dumps(value, separators=(",", ":"), allow_nan=False).encode("utf-8"))


def signing_key_rotate(*, force: bool = False) -> RotationResult:
    """Apply whatever the rotation engine says is due now; ``force`` starts a rotation early."""
    store = key_store_get()
    with transaction.atomic():
        _rotation_lock()
        # Read after the lock: a successor's published_at starts its publish lead, so a time read
        # before waiting for another worker would let it sign that much sooner after it appears.
        now = clock()
        keys = list(SigningKey.objects.filter(phase__in=engine.PUBLISHED_PHASES))
        decisions = engine.rotation_decide(
            keys=[signing_key_state(key) for key in keys], policy=rotation_policy(), now=now, force=force
        )
        result = _decisions_apply(decisions, keys={key.kid: key for key in keys}, store=store, now=now)
        jwks_version = None
        if result.changed or not JwksDocument.objects.exists():
            jwks_version = jwks_publish().version
    active_signer_cache.clear()
    return RotationResult(
        created=result.created, activated=result.activated, retired=result.retired, jwks_version=jwks_version
    )


def signing_key_revoke(*, kid: str) -> None:
    """Remove a key from the JWKS at once; when it was signing, another key signs at once."""
    if not isinstance(kid, str) or not kid or len(kid) > 64:
        raise UnknownKey(str(kid))
    store = key_store_get()
    with transaction.atomic():
        _rotation_lock()
        now = clock()  # after the lock, as in signing_key_rotate
        key = SigningKey.objects.filter(kid=kid).first()
        if key is None:
            raise UnknownKey(kid)
        if key.phase == engine.REVOKED:
            return
        if key.phase not in engine.PUBLISHED_PHASES:
            raise KeyNotPublished(kid)
        was_active = key.phase == engine.ACTIVE
        key.phase = engine.REVOKED
        key.revoked_at = now
        if was_active:
            key.deactivated_at = now
        key.store_reference = b""  # the private key is destroyed with the revocation
        key._change_reason = "revoked"
        key.save()
        if was_active:
            successor = SigningKey.objects.filter(phase=engine.PENDING).order_by("published_at").first()
            if successor is not None:
                _activate(successor, now=now, reason="activated at once: the active key was revoked")
            else:
                _create(store, algorithm=rotation_policy().algorithm, phase=engine.ACTIVE, now=now)
        jwks_publish()
    active_signer_cache.clear()


def jwks_publish() -> JwksDocument:
    """Render the JWKS of the published keys, store it as a new version if it changed, distribute it."""
    now = clock()
    with transaction.atomic():
        _rotation_lock()
        published = SigningKey.objects.filter(phase__in=engine.PUBLISHED_PHASES).order_by("created_at", "kid")
        body = jwks_render((key.kid, key.algorithm, key.public_jwk) for key in published)
        document = JwksDocument.objects.order_by("-version").first()
        if document is None or document.body != body:
            document = JwksDocument.objects.create(
                version=(document.version + 1) if document else 1,
                body=body,
                etag=jwks_etag(body.encode("utf-8")),
                created_at=now,
            )
        # Drop the cached copy now (a reader refills it from the database) and set it after commit.
        cache.delete(JWKS_CACHE_KEY)
        transaction.on_commit(partial(_jwks_distribute, document.version, document.body, document.etag))
    return document


def _jwks_distribute(version: int, body: str, etag: str) -> None:
    cache.set(JWKS_CACHE_KEY, (version, body.encode("utf-8"), etag), JWKS_CACHE_SECONDS)
    if settings.JWKS_PUBLISH_PATH:
        _file_write_atomic(Path(settings.JWKS_PUBLISH_PATH), body.encode("utf-8"))


def _file_write_atomic(path: Path, data: bytes) -> None:
    """Write a file so that readers see the old or the new content, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o644)  # a public document, served by a static host
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def signing_key_reencrypt() -> int:
    """Re-seal every published key under the first KEY_ENCRYPTION_KEY; returns how many changed."""
    store = key_store_get()
    if not isinstance(store, LocalKeyStore):
        return 0
    changed = 0
    with transaction.atomic():
        _rotation_lock()
        for key in SigningKey.objects.filter(phase__in=engine.PUBLISHED_PHASES, store=store.name):
            resealed = store.reseal(kid=key.kid, sealed=bytes(key.store_reference))
            if resealed is not None:
                key.store_reference = resealed
                key._change_reason = "re-encrypted under the first KEY_ENCRYPTION_KEY"
                key.save(update_fields=["store_reference"])
                changed += 1
    return changed


def key_caches_clear() -> None:
    """Forget this process's cached signer and JWKS (tests, and after operator changes)."""
    active_signer_cache.clear()
    cache.delete(JWKS_CACHE_KEY)


def rotation_policy() -> engine.RotationPolicy:
    """The rotation timing rules from settings."""
    return engine.RotationPolicy(
        algorithm=settings.KEY_ALGORITHM,
        rotation_interval=timedelta(seconds=settings.KEY_ROTATION_INTERVAL),
        # Our own JWKS cache may serve the previous document a few seconds after publishing.
        publish_lead=timedelta(seconds=settings.KEY_PUBLISH_LEAD + JWKS_CACHE_SECONDS),
        # The longest lifetime TOKEN_LIFETIME allows, not the current one: lowering the setting while
        # a key retires must not drop it while tokens it signed under the old lifetime still live.
        token_lifetime=timedelta(seconds=settings.TOKEN_LIFETIME_MAX),
        signer_recheck=timedelta(seconds=ActiveSignerCache.RECHECK_SECONDS),
        verifier_leeway=VERIFIER_LEEWAY,
    )


def _rotation_lock() -> None:
    """Lock the rotation row until the transaction ends (created on first use, race-free)."""
    if not list(KeyRotationLock.objects.select_for_update().filter(pk=1)):
        KeyRotationLock.objects.bulk_create([KeyRotationLock(pk=1)], ignore_conflicts=True)
        list(KeyRotationLock.objects.select_for_update().filter(pk=1))


def _decisions_apply(
    decisions: list[engine.Decision], *, keys: dict[str, SigningKey], store: KeyStore, now: datetime
) -> RotationResult:
    created: list[str] = []
    activated: list[str] = []
    retired: list[str] = []
    for decision in decisions:
        if isinstance(decision, engine.Bootstrap):
            key = _create(store, algorithm=decision.algorithm, phase=engine.ACTIVE, now=now)
            created.append(key.kid)
            activated.append(key.kid)
        elif isinstance(decision, engine.CreateSuccessor):
            created.append(_create(store, algorithm=decision.algorithm, phase=engine.PENDING, now=now).kid)
        elif isinstance(decision, engine.Activate):
            if decision.previous_kid:
                _deactivate(keys[decision.previous_kid], now=now)
            _activate(keys[decision.kid], now=now, reason=f"activated: {decision.reason}")
            activated.append(decision.kid)
        elif isinstance(decision, engine.Retire):
            key = keys[decision.kid]
            key.phase = engine.RETIRED
            key.retired_at = now
            key.store_reference = b""  # every token it signed has expired: nothing left to sign
            key._change_reason = "retired: every token it signed has expired"
            key.save()
            retired.append(key.kid)
    return RotationResult(created=tuple(created), activated=tuple(activated), retired=tuple(retired))


def _create(store: KeyStore, *, algorithm: str, phase: str, now: datetime) -> SigningKey:
    new = store.create(algorithm=algorithm)
    key = SigningKey(
        kid=new.kid,
        algorithm=new.algorithm,
        phase=phase,
        public_jwk=new.public_jwk,
        store=store.name,
        store_reference=new.reference,
        created_at=now,
        published_at=now,
        activated_at=now if phase == engine.ACTIVE else None,
    )
    key._change_reason = "created and activated" if phase == engine.ACTIVE else "created and published"
    key.save()
    return key


def _deactivate(key: SigningKey, *, now: datetime) -> None:
    key.phase = engine.RETIRING
    key.deactivated_at = now
    key._change_reason = "retiring: a successor signs now"
    key.save()


def _activate(key: SigningKey, *, now: datetime, reason: str) -> None:
    key.phase = engine.ACTIVE
    key.activated_at = now
    key._change_reason = reason
    key.save()
