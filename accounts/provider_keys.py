"""Identity providers' signing keys: discovery, JWKS fetch, an in-process cache that degrades well,
and the last known good keys in a store that every worker shares.

These are the providers' keys, which verify the tokens we are given; the keys we sign our own tokens
with, and our JWKS, are the ``keys`` app's.

A ``KeySource`` says where one provider's keys come from (its discovery document; for B2C, one per
user flow) and what that document must say: its ``issuer`` exactly the provider's, its ``jwks_uri``
on the provider's origin (``accounts.provider_http``). Each source has its own cache entry and its
own stored row, so nothing one provider publishes is ever used for another's tokens, whatever
``kid`` it names. The cache lives for the life of the worker process:

- It refreshes each source's keys by age (``refresh_after``, an hour) in the background.
- An unknown ``kid`` refetches at most once per ``kid_refetch_cooldown`` (30 s) per source, and a
  ``kid`` missing from a fresh fetch triggers no other fetch for ``absent_kid_ttl`` (5 minutes; at
  most ``max_absent_kids`` are remembered). Every fetch brings the whole JWKS, so forged ``kid``s can
  keep a genuine new key out for at most the cooldown, 30 s: the first unknown ``kid`` after it (the
  attacker's own included) fetches it. Nor can they make us hammer a provider: one fetch per 30 s
  per source and worker at most.
- A failed refresh never empties it: the last known good keys stay in use while the provider is
  unreachable or answers errors, garbage or a document we refuse, up to ``max_stale``
  (``ENTRA_KEYS_MAX_STALE``, 24 hours by default, Microsoft's guidance for caching signing keys)
  after they were fetched.
- Every successful fetch also writes the keys, public members only, to the ``store``
  (``accounts.provider_key_store``: the database). A worker with no usable keys that cannot reach
  the provider (started or recycled during an outage) takes the stored ones if they are younger than
  ``max_stale``, after the same JWKS rules as fetched ones: the row is trusted no more than the
  network. With none, ``JwksUnavailable`` says when the provider will be tried again
  (``retry_after``): an outage, not the caller's fault. When the provider did answer but with a
  document we refuse (another issuer, keys off its origin), it is ``KeysRefused``: no outage, a
  provider we will not trust as it stands.

Every fetch has a total deadline.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from django.conf import settings

from accounts.identity_provider import AZURE_AD_B2C, ENTRA_KINDS, METADATA_PATH, IdentityProvider, v2_issuer
from accounts.provider_http import FetchFailed, json_get, jwks_uri_refusal
from accounts.provider_jwks import JwksUnusable, ProviderKey, jwks_document, jwks_parse
from lib import metrics

logger = logging.getLogger(__name__)

__all__ = ["JwksCache", "JwksUnavailable", "KeySource", "KeysRefused", "ProviderKey", "StoredKeySet"]


class JwksUnavailable(Exception):
    """No usable keys could be had (the provider unreachable, slow, an error status or garbage; none stored).

    ``retry_after`` is the number of seconds until the cache tries the provider again, when it says.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class KeysRefused(JwksUnavailable):
    """The provider answered with a document we refuse (another issuer, a ``jwks_uri`` off its origin)
    and no good keys of it are known: its tokens cannot be trusted until it is fixed."""


@dataclass(frozen=True)
class KeySource:
    """Where one provider's keys come from and what its discovery document must say.

    ``location`` and ``name`` key the cache entry and the stored row: for an Entra directory its
    authority and its name (the ``tid`` for the ``ENTRA_*`` directories, as they always were stored);
    for any other kind the discovery URL (one per B2C user flow) and the provider's name.
    """

    location: str
    name: str
    metadata_url: str
    issuer: str
    jwks_origin: str
    algorithms: tuple[str, ...]
    label: str


def entra_key_source(*, authority: str, tid: str) -> KeySource:
    """The keys of an Entra directory trusted by its ``tid`` (for the exchange and the portal's sign-in)."""
    issuer = v2_issuer(authority, tid)
    return KeySource(
        location=authority,
        name=tid,
        metadata_url=f"{issuer}{METADATA_PATH}",
        issuer=issuer,
        jwks_origin=authority,
        algorithms=("RS256",),
        label=f"Entra directory {tid}",
    )


def provider_key_source(provider: IdentityProvider, *, user_flow: str | None = None) -> KeySource:
    """The keys of ``provider`` (of its ``user_flow``, for B2C)."""
    metadata_url = provider.metadata_url_of(user_flow)
    entra = provider.kind in ENTRA_KINDS
    label = (
        f"Entra directory {provider.name}"
        if provider.name == provider.tenant_id
        else f"provider {provider.name}"
    )
    if provider.kind == AZURE_AD_B2C:
        label = f"{label} (user flow {user_flow})"
    return KeySource(
        location=provider.authority if entra else metadata_url,
        name=provider.name,
        metadata_url=metadata_url,
        issuer=provider.issuer,
        jwks_origin=provider.jwks_origin,
        algorithms=provider.algorithms,
        label=label,
    )


@dataclass(frozen=True)
class StoredKeySet:
    """A source's keys as a store returns them: a JWKS to parse again, and when it was fetched."""

    jwks: object
    fetched_at: float  # seconds since the epoch, like the cache's clock


class KeySetStore(Protocol):
    """Where workers share each source's last known good keys (``accounts.provider_key_store``).

    A store handles its own failures (logs them; ``get`` then answers None): it is a fallback, never
    a reason to refuse an exchange.
    """

    def get(self, *, authority: str, tid: str) -> StoredKeySet | None: ...

    def put(self, *, authority: str, tid: str, jwks: dict, fetched_at: float) -> None: ...

    def thread_finished(self) -> None:
        """A background refresh thread ends: release what it held (its database connection)."""


@dataclass
class DirectoryKeys:
    """The cache entry of one source; ``*_at`` are readings of the cache's ``clock``.

    ``absent`` maps the ``kid``s that a fresh fetch did not contain to when that fetch was made;
    ``refusal`` says why the last fetch was refused, while it is the latest word of the provider.
    """

    keys: dict[str, ProviderKey] = field(default_factory=dict)
    fetched_at: float | None = None
    attempted_at: float | None = None
    kid_refetch_at: float | None = None
    absent: dict[str, float] = field(default_factory=dict)
    refusal: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    refresher: threading.Thread | None = None


class JwksCache:
    """Signing keys per source, fetched on demand, kept per worker process and shared through
    ``store`` (none: nothing is shared).

    Seams for tests are class attributes: ``clock`` for cache ages and throttles, and (also
    constructor arguments) ``timeout`` for the fetch deadline, ``refresh_in_background``;
    ``max_stale`` is ``ENTRA_KEYS_MAX_STALE`` (read once, here) unless given.
    """

    clock: Callable[[], float] = time.time
    timeout = 3.0  # seconds for one whole refresh (discovery + JWKS, connect + read)
    refresh_after = 3600  # providers publish new keys well before signing with them
    retry_after = 30  # after a failed fetch, wait this long before trying again
    kid_refetch_cooldown = 30  # an unknown kid refetches at most this often per source
    absent_kid_ttl = 300  # a kid missing from a fresh fetch triggers no other fetch for this long
    max_absent_kids = 1000
    max_clock_skew = 300  # stored keys dated this far ahead (another host's clock) are still believed
    max_bytes = 256 * 1024
    max_keys = 100
    refresh_in_background = True

    def __init__(
        self,
        *,
        timeout: float | None = None,
        refresh_in_background: bool | None = None,
        store: KeySetStore | None = None,
        max_stale: float | None = None,
    ) -> None:
        if timeout is not None:
            self.timeout = timeout
        if refresh_in_background is not None:
            self.refresh_in_background = refresh_in_background
        self.store = store
        # How long after their fetch keys may still verify tokens while the provider cannot be reached.
        self.max_stale: float = settings.ENTRA_KEYS_MAX_STALE if max_stale is None else max_stale
        self._directories: dict[tuple[str, str], DirectoryKeys] = {}
        self._lock = threading.Lock()

    def clear(self) -> None:
        """Forget every source (tests; a running background refresh finishes harmlessly)."""
        with self._lock:
            self._directories = {}

    def directory(self, *, authority: str, tid: str) -> DirectoryKeys:
        """The entry of the source stored as (``authority``, ``tid``) (see ``KeySource``)."""
        key = (authority, tid)
        with self._lock:
            entry = self._directories.get(key)
            if entry is None:
                entry = self._directories[key] = DirectoryKeys()
            return entry

    def key_get(self, *, authority: str, tid: str, kid: str) -> ProviderKey | None:
        """The key ``kid`` of Entra directory ``tid`` under ``authority`` (see ``key_find``)."""
        return self.key_find(source=entra_key_source(authority=authority, tid=tid), kid=kid)

    def key_find(self, *, source: KeySource, kid: str) -> ProviderKey | None:
        """The key ``kid`` of ``source``, or None if the source does not publish it.

        Raises ``JwksUnavailable`` when no usable keys are known (none in memory younger than
        ``max_stale``) and none can be fetched or taken from the store; ``KeysRefused`` when the
        provider's latest answer was refused.
        """
        entry = self.directory(authority=source.location, tid=source.name)
        now = self.clock()
        if not self._usable(entry, now):
            self._load(entry, source=source, now=now)
        elif self._refresh_due(entry, now):
            self._refresh_later(entry, source=source, now=now)
        key = entry.keys.get(kid)
        if key is None and self._kid_refetch_allowed(entry, kid, now):
            with entry.lock:
                key = entry.keys.get(kid)
                if key is None and self._kid_refetch_allowed(entry, kid, now):
                    key = self._kid_refetch(entry, source=source, kid=kid, now=now)
        return key

    def _usable(self, entry: DirectoryKeys, now: float) -> bool:
        fetched = entry.fetched_at  # on every validation: kept to plain comparisons
        return (
            fetched is not None
            and bool(entry.keys)
            and -self.max_clock_skew <= now - fetched < self.max_stale
        )

    def _within_bound(self, age: float) -> bool:
        return -self.max_clock_skew <= age < self.max_stale

    def _load(self, entry: DirectoryKeys, *, source: KeySource, now: float) -> None:
        """Usable keys for a source with none in memory: from the provider, else from the store,
        else ``JwksUnavailable`` (``KeysRefused``) saying when the provider will be tried again."""
        with entry.lock:
            if self._usable(entry, now):
                return  # another thread loaded them while we waited
            cause = "the last fetch failed moments ago"
            if entry.attempted_at is None or now - entry.attempted_at >= self.retry_after:
                try:
                    self._refresh(entry, source=source, now=now)
                    return
                except JwksUnavailable as exc:
                    if self._stored_adopt(entry, source=source, now=now):
                        return
                    cause = str(exc)
            attempted = entry.attempted_at if entry.attempted_at is not None else now
            retry_after = max(0.0, attempted + self.retry_after - now)
            if entry.refusal is not None:
                raise KeysRefused(entry.refusal, retry_after=retry_after)
            raise JwksUnavailable(cause, retry_after=retry_after)

    def _stored_adopt(self, entry: DirectoryKeys, *, source: KeySource, now: float) -> bool:
        """Take the store's keys if younger than ``max_stale`` and valid by the rules of a fetched JWKS."""
        stored = (
            self.store.get(authority=source.location, tid=source.name) if self.store is not None else None
        )
        if stored is None:
            return False
        age = now - stored.fetched_at
        if not self._within_bound(age):
            logger.warning(
                "stored keys of %s not used: fetched %d s ago, beyond the %d s allowed",
                source.label,
                age,
                self.max_stale,
            )
            return False
        try:
            if not isinstance(stored.jwks, dict):
                raise JwksUnusable("the stored JWKS is not an object")
            keys = jwks_parse(stored.jwks, max_keys=self.max_keys, algorithms=source.algorithms)
        except JwksUnusable as exc:
            logger.warning("stored keys of %s not used (%s)", source.label, exc)
            return False
        entry.keys, entry.fetched_at = keys, stored.fetched_at
        logger.warning(
            "provider unreachable: %s verified with the keys stored %d s ago (%d keys)",
            source.label,
            age,
            len(keys),
        )
        return True

    def _refresh_due(self, entry: DirectoryKeys, now: float) -> bool:
        fetched = entry.fetched_at if entry.fetched_at is not None else now
        attempted = entry.attempted_at if entry.attempted_at is not None else fetched
        return now - fetched >= self.refresh_after and now - attempted >= self.retry_after

    def _kid_refetch_allowed(self, entry: DirectoryKeys, kid: str, now: float) -> bool:
        """Once per cooldown per source, not for a kid a fresh fetch lacked, not into a failing provider."""
        if entry.kid_refetch_at is not None and now - entry.kid_refetch_at < self.kid_refetch_cooldown:
            return False
        absent_at = entry.absent.get(kid)
        if absent_at is not None and now - absent_at < self.absent_kid_ttl:
            return False
        attempted = entry.attempted_at
        if attempted is None or attempted == entry.fetched_at:
            return True  # the last fetch succeeded
        return now - attempted >= self.retry_after

    def _kid_refetch(
        self, entry: DirectoryKeys, *, source: KeySource, kid: str, now: float
    ) -> ProviderKey | None:
        """Fetch the JWKS for an unknown kid; if the fresh keys lack it too, remember it as absent.
        Caller holds ``entry.lock``."""
        entry.kid_refetch_at = now
        try:
            self._refresh(entry, source=source, now=now)
        except JwksUnavailable:
            return None  # logged; the cached keys stay
        key = entry.keys.get(kid)
        if key is None:
            entry.absent.pop(kid, None)
            while len(entry.absent) >= self.max_absent_kids:
                del entry.absent[next(iter(entry.absent))]  # the oldest
            entry.absent[kid] = now
        return key

    def _refresh_later(self, entry: DirectoryKeys, *, source: KeySource, now: float) -> None:
        """Refresh aged keys without making this request wait (unless background is turned off)."""
        if not self.refresh_in_background:
            with entry.lock, contextlib.suppress(JwksUnavailable):
                self._refresh(entry, source=source, now=now)
            return
        with self._lock:
            if entry.refresher is not None and entry.refresher.is_alive():
                return
            entry.attempted_at = now  # claim the refresh so other requests don't start one too

            def run() -> None:
                try:
                    with entry.lock, contextlib.suppress(JwksUnavailable):
                        self._refresh(entry, source=source, now=now)
                finally:
                    if self.store is not None:
                        self.store.thread_finished()

            entry.refresher = threading.Thread(target=run, name=f"jwks-refresh-{source.name}", daemon=True)
            entry.refresher.start()

    def _refresh(self, entry: DirectoryKeys, *, source: KeySource, now: float) -> None:
        """Fetch the source's keys and replace the cached ones; on any failure keep them. Caller
        holds ``entry.lock``."""
        entry.attempted_at = now
        try:
            keys = self._fetch(source)
        except JwksUnavailable as exc:
            entry.refusal = str(exc) if isinstance(exc, KeysRefused) else None
            metrics.jwks_fetch_record(ok=False)
            logger.warning(
                "keys of %s not refreshed (%s); %d cached keys stay in use",
                source.label,
                exc,
                len(entry.keys),
            )
            raise
        entry.keys, entry.fetched_at, entry.refusal = keys, now, None
        metrics.jwks_fetch_record(ok=True)
        logger.info("keys of %s refreshed: %d keys", source.label, len(keys))
        if self.store is not None:
            self.store.put(
                authority=source.location, tid=source.name, jwks=jwks_document(keys), fetched_at=now
            )

    def _fetch(self, source: KeySource) -> dict[str, ProviderKey]:
        """Discovery, then the JWKS it names, by the source's rules, within one deadline."""
        deadline = time.monotonic() + self.timeout
        try:
            discovery = json_get(source.metadata_url, deadline=deadline, max_bytes=self.max_bytes)
            jwks_uri = discovery.get("jwks_uri")
            if not isinstance(jwks_uri, str):
                raise JwksUnavailable("the discovery document has no jwks_uri")
            # A provider's document vouches for its own issuer only: keys listed under another
            # issuer's name, or kept on another origin, are not its keys to give.
            if discovery.get("issuer") != source.issuer:
                raise KeysRefused("the discovery document names another issuer")
            refusal = jwks_uri_refusal(jwks_uri, origin=source.jwks_origin)
            if refusal is not None:
                raise KeysRefused(refusal)
            document = json_get(jwks_uri, deadline=deadline, max_bytes=self.max_bytes)
            return jwks_parse(document, max_keys=self.max_keys, algorithms=source.algorithms)
        except (FetchFailed, JwksUnusable) as exc:
            raise JwksUnavailable(str(exc)) from None
