"""Key management use cases: rotate, revoke, publish the JWKS, sign tokens, re-encrypt.

Every write runs in one transaction holding the rotation lock row, so several workers or beats
running at once still apply each decision exactly once.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from keys import engine
from keys.cache import jwks_cache, jwks_entry_pack
from keys.errors import KeyDecryptionFailed, KeyIntegrityFailed, KeyNotPublished, NoActiveKey, UnknownKey
from keys.integrity import jwks_document_authenticator, jwks_document_message, key_binder, public_jwk_checked
from keys.jwks import jwks_etag, jwks_render
from keys.models import JwksDocument, KeyRotationLock, SigningKey
from keys.selectors import JWKS_CACHE_KEY, JWKS_CACHE_SECONDS, jwks_document_verified, signing_key_state
from keys.stores import KeyStore, LocalKeyStore, Signer, b64url, key_store_get
from lib.table_changes import table_changes

logger = logging.getLogger(__name__)

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
    that long on top of the token lifetime). A revoked key stops signing everywhere within a second
    of the commit: the interval is half that, and on PostgreSQL ``lib.table_changes`` is sooner.
    """

    RECHECK_SECONDS = 0.5
    clock: Callable[[], float] = time.monotonic

    def __init__(self, *, recheck_seconds: float = RECHECK_SECONDS):
        self.recheck_seconds = recheck_seconds
        self._lock = threading.Lock()
        self._state: tuple[Signer | None, float] | None = None  # (signer, checked at), replaced whole

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

    def expire(self) -> None:
        """Re-check the active key on the next use; the decrypted key is kept if it is still active."""
        if (state := self._state) is not None:
            self._state = (state[0], float("-inf"))

    def _stale(self, state: tuple[Signer | None, float] | None) -> bool:
        return state is None or self.clock() - state[1] >= self.recheck_seconds

    @staticmethod
    def _load(current: Signer | None) -> Signer | None:
        key = SigningKey.objects.filter(phase=engine.ACTIVE).first()
        if key is None:
            return None
        # A key that is not bound to its private key never signs: downstream could not verify it
        # against a JWKS that leaves it out, and someone without the secret may have written it.
        signing_key_check(key)
        if current is not None and current.kid == key.kid:
            return current
        store = key_store_get(key.store)
        return store.signer(kid=key.kid, algorithm=key.algorithm, reference=bytes(key.store_reference))


active_signer_cache = ActiveSignerCache()


def _signing_keys_changed(table: str | None) -> None:
    if table == SigningKey._meta.db_table:
        active_signer_cache.expire()


table_changes.subscribe(_signing_keys_changed)


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
    with _created_keys_compensated(store) as created, transaction.atomic():
        _rotation_lock()
        # Read after the lock: a successor's published_at starts its publish lead, so a time read
        # before waiting for another worker would let it sign that much sooner after it appears.
        now = clock()
        keys = list(SigningKey.objects.filter(phase__in=engine.PUBLISHED_PHASES))
        decisions = engine.rotation_decide(
            keys=[signing_key_state(key) for key in keys], policy=rotation_policy(), now=now, force=force
        )
        result = _decisions_apply(
            decisions, keys={key.kid: key for key in keys}, store=store, now=now, created=created
        )
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
    with _created_keys_compensated(store) as created, transaction.atomic():
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
        _store_disable_after_commit(key)
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
                _create(
                    store,
                    algorithm=rotation_policy().algorithm,
                    phase=engine.ACTIVE,
                    now=now,
                    created=created,
                )
        jwks_publish()
    active_signer_cache.clear()


def jwks_publish() -> JwksDocument:
    """Render the JWKS of the published keys, store it as a new version if it changed, distribute it.

    Only keys bound to their private key are published: a row that fails (corrupt, or written by
    someone without KEY_ENCRYPTION_KEY) is left out and logged. Publishing refuses, rather than
    emptying the JWKS, when no row verifies because the configured secret made none of them.
    """
    now = clock()
    with transaction.atomic():
        _rotation_lock()
        published = SigningKey.objects.filter(phase__in=engine.PUBLISHED_PHASES).order_by("created_at", "kid")
        verified: list[SigningKey] = []
        unknown_secret: KeyDecryptionFailed | None = None
        for key in published:
            try:
                signing_key_check(key, bind_legacy=True)
            except KeyIntegrityFailed as failed:
                logger.error("not published: %s", failed)
                continue
            except KeyDecryptionFailed as failed:
                logger.error("not published: %s", failed)
                unknown_secret = failed
                continue
            verified.append(key)
        if unknown_secret is not None and not verified:
            raise unknown_secret
        body = jwks_render((key.kid, key.algorithm, key.public_jwk) for key in verified)
        document = JwksDocument.objects.order_by("-version").first()
        if document is None or document.body != body or not _document_verified(document):
            version = (document.version + 1) if document else 1
            etag = jwks_etag(body.encode("utf-8"))
            document = JwksDocument.objects.create(
                version=version,
                body=body,
                etag=etag,
                created_at=now,
                mac=jwks_document_authenticator().mac(
                    jwks_document_message(version=version, etag=etag, body=body)
                ),
            )
        # Drop the cached copy now (a reader refills it from the database) and set it after commit.
        jwks_cache().delete(JWKS_CACHE_KEY)
        transaction.on_commit(partial(_jwks_distribute, document.version, document.body, document.etag))
    return document


def signing_key_check(key: SigningKey, *, bind_legacy: bool = False) -> None:
    """Raise KeyIntegrityFailed unless the row's public key is bound to its private key
    (KeyDecryptionFailed when a secret that is not configured bound it).

    A row made before bindings existed is proved against its private key (the store reads the
    public key from it) and, with ``bind_legacy``, bound from then on.
    """
    binding = bytes(key.binding)
    reference = bytes(key.store_reference)
    if binding:
        key_binder().check(
            store=key.store,
            kid=key.kid,
            algorithm=key.algorithm,
            jwk=key.public_jwk,
            reference=reference,
            binding=binding,
        )
        return
    members = public_jwk_checked(kid=key.kid, algorithm=key.algorithm, jwk=key.public_jwk)
    if key_store_get(key.store).public_jwk_of(kid=key.kid, reference=reference) != members:
        raise KeyIntegrityFailed(key.kid, "its public key is not its sealed key's")
    if bind_legacy:
        key.binding = key_binder().bind(
            store=key.store, kid=key.kid, algorithm=key.algorithm, jwk=members, reference=reference
        )
        key._change_reason = "bound to its sealed private key"
        key.save(update_fields=["binding"])


def _document_verified(document: JwksDocument) -> bool:
    return jwks_document_verified(
        version=document.version, body=document.body, etag=document.etag, mac=bytes(document.mac)
    )


def _jwks_distribute(version: int, body: str, etag: str) -> None:
    entry = jwks_entry_pack(version=version, body=body.encode("utf-8"), etag=etag)
    jwks_cache().set(JWKS_CACHE_KEY, entry, JWKS_CACHE_SECONDS)
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
    """Re-seal and re-bind every published key under the first KEY_ENCRYPTION_KEY; returns how many
    changed. Rows made before bindings existed are proved against their sealed key and bound."""
    store = key_store_get()
    binder = key_binder()
    changed = 0
    with transaction.atomic():
        _rotation_lock()
        for key in SigningKey.objects.filter(phase__in=engine.PUBLISHED_PHASES, store=store.name):
            signing_key_check(key)  # refuses a row that is not bound (or provably) to its key
            resealed = None
            if isinstance(store, LocalKeyStore):
                resealed = store.reseal(kid=key.kid, sealed=bytes(key.store_reference))
            if resealed is None and bytes(key.binding) and binder.is_current(bytes(key.binding)):
                continue
            if resealed is not None:
                key.store_reference = resealed
            key.binding = binder.bind(
                store=key.store,
                kid=key.kid,
                algorithm=key.algorithm,
                jwk=public_jwk_checked(kid=key.kid, algorithm=key.algorithm, jwk=key.public_jwk),
                reference=bytes(key.store_reference),
            )
            key._change_reason = "re-encrypted and re-bound under the first KEY_ENCRYPTION_KEY"
            key.save(update_fields=["store_reference", "binding"])
            changed += 1
    return changed


def key_store_readiness() -> str:
    """ "ok", or why the key store cannot sign now: for /readyz (the vault's private endpoint when
    required, a vault left alone after repeated failures)."""
    if not settings.KEY_VAULT_URL or (
        settings.KEY_STORE != "azure-keyvault" and not settings.KEY_VAULT_WRAP_KEY
    ):
        return "ok"
    from keys.vault import vault_readiness  # the Azure SDK only where the vault is used

    return vault_readiness()


def key_caches_clear() -> None:
    """Forget this process's cached signer and JWKS (tests, and after operator changes)."""
    active_signer_cache.clear()
    jwks_cache().delete(JWKS_CACHE_KEY)


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


@contextmanager
def _created_keys_compensated(store: KeyStore) -> Iterator[list[bytes]]:
    """Collects the references of keys a store creates; when the transaction that records them
    fails, each is disabled in the store, so a vault key no row knows about cannot sign."""
    created: list[bytes] = []
    try:
        yield created
    except BaseException:
        for reference in created:
            try:
                store.disable(reference)
            except Exception as exc:  # the original failure matters more; say what is left behind
                logger.error(
                    "a key created for a failed rotation could not be disabled (%s): disable it in the store",
                    type(exc).__name__,
                )
        raise


def _store_disable_after_commit(key: SigningKey) -> None:
    """Disable the key in its store once the transaction that retires or revokes it commits.

    Best effort: the key is already out of the JWKS and never signs again here; a vault that cannot
    be reached is logged (the version stays enabled in the vault until disabled by hand)."""
    reference = bytes(key.store_reference)
    if not reference:
        return

    def disable() -> None:
        try:
            key_store_get(key.store).disable(reference)
        except Exception as exc:
            logger.error(
                "signing key %s could not be disabled in its store (%s)", key.kid, type(exc).__name__
            )

    transaction.on_commit(disable)


def _decisions_apply(
    decisions: list[engine.Decision],
    *,
    keys: dict[str, SigningKey],
    store: KeyStore,
    now: datetime,
    created: list[bytes],
) -> RotationResult:
    created_kids: list[str] = []
    activated: list[str] = []
    retired: list[str] = []
    for decision in decisions:
        if isinstance(decision, engine.Bootstrap):
            key = _create(store, algorithm=decision.algorithm, phase=engine.ACTIVE, now=now, created=created)
            created_kids.append(key.kid)
            activated.append(key.kid)
        elif isinstance(decision, engine.CreateSuccessor):
            created_kids.append(
                _create(
                    store, algorithm=decision.algorithm, phase=engine.PENDING, now=now, created=created
                ).kid
            )
        elif isinstance(decision, engine.Activate):
            if decision.previous_kid:
                _deactivate(keys[decision.previous_kid], now=now)
            _activate(keys[decision.kid], now=now, reason=f"activated: {decision.reason}")
            activated.append(decision.kid)
        elif isinstance(decision, engine.Retire):
            key = keys[decision.kid]
            _store_disable_after_commit(key)
            key.phase = engine.RETIRED
            key.retired_at = now
            key.store_reference = b""  # every token it signed has expired: nothing left to sign
            key._change_reason = "retired: every token it signed has expired"
            key.save()
            retired.append(key.kid)
    return RotationResult(created=tuple(created_kids), activated=tuple(activated), retired=tuple(retired))


def _create(
    store: KeyStore, *, algorithm: str, phase: str, now: datetime, created: list[bytes]
) -> SigningKey:
    new = store.create(algorithm=algorithm)
    created.append(new.reference)
    key = SigningKey(
        kid=new.kid,
        algorithm=new.algorithm,
        phase=phase,
        public_jwk=new.public_jwk,
        store=store.name,
        store_reference=new.reference,
        binding=key_binder().bind(
            store=store.name,
            kid=new.kid,
            algorithm=new.algorithm,
            jwk=new.public_jwk,
            reference=new.reference,
        ),
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
