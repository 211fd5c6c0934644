"""The issuer's JWKS, cached per verifier: fresh keys cost no network, and the cache degrades well.

- Found through the issuer's RFC 8414 metadata (``{issuer}/.well-known/oauth-authorization-server``,
  whose ``issuer`` must equal the configured one) unless a ``jwks_uri`` is given.
- Fresh for the answer's ``Cache-Control: max-age`` (less any ``Age``), bounded by
  ``min_cache_age`` and ``max_cache_age``; then revalidated with ``If-None-Match`` (a 304 keeps the
  keys and renews them). While fresh, a key lookup is one dictionary read and takes no lock.
- A failed fetch never empties the cache: the last good keys stay in use (for at most
  ``stale_if_error`` seconds after they were last confirmed) and the next attempt waits
  ``retry_after``. While one thread refreshes stale keys the others go on with the ones they have.
- An unknown ``kid`` refetches at most once per ``refetch_cooldown``, counted from the last fetch of
  any kind: a flood of forged kids makes one fetch per cooldown, and a genuinely new key is therefore
  found at most one cooldown after it is published.
- Every fetch (metadata and JWKS together) has a total deadline of ``fetch_timeout`` seconds.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from issuer_verify.errors import InvalidToken
from issuer_verify.http import FetchFailed, http_get, json_document, url_check
from issuer_verify.keys import VerificationKey, jwks_parse

logger = logging.getLogger("issuer_verify")

METADATA_PATH = "/.well-known/oauth-authorization-server"
_MAX_AGE = re.compile(r'max-age\s*=\s*"?(\d{1,10})"?', re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class _State:
    """What the cache holds, replaced whole so a reader never sees half an update."""

    keys: Mapping[str, VerificationKey]
    etag: str | None
    fresh_until: float  # readings of JwksCache.clock
    validated_at: float | None  # the last 200 or 304
    retry_at: float  # after a failed fetch, no attempt before this


_EMPTY = _State(keys={}, etag=None, fresh_until=-math.inf, validated_at=None, retry_at=-math.inf)


class JwksCache:
    """The keys of one issuer for one process; thread-safe.

    Seams for tests are class attributes: ``clock`` (cache ages, cooldowns) and ``retry_after``.
    """

    clock: Callable[[], float] = time.monotonic
    retry_after = 5.0

    def __init__(
        self,
        *,
        issuer: str,
        jwks_uri: str | None = None,
        min_cache_age: float = 60,
        max_cache_age: float = 3600,
        refetch_cooldown: float = 30,
        fetch_timeout: float = 3.0,
        stale_if_error: float = 86_400,
    ) -> None:
        self.issuer = url_check(issuer, what="issuer", query=False)
        self.metadata_uri = issuer.rstrip("/") + METADATA_PATH
        self._jwks_uri = None if jwks_uri is None else url_check(jwks_uri, what="jwks_uri")
        _check_number("min_cache_age", min_cache_age, low=0.001, high=86_400)
        _check_number("max_cache_age", max_cache_age, low=min_cache_age, high=86_400)
        _check_number("refetch_cooldown", refetch_cooldown, low=0.001, high=86_400)
        _check_number("fetch_timeout", fetch_timeout, low=0.001, high=60)
        _check_number("stale_if_error", stale_if_error, low=max_cache_age, high=30 * 86_400)
        self.min_cache_age = min_cache_age
        self.max_cache_age = max_cache_age
        self.refetch_cooldown = refetch_cooldown
        self.fetch_timeout = fetch_timeout
        self.stale_if_error = stale_if_error
        self._state = _EMPTY
        self._attempted_at = -math.inf
        self._lock = threading.Lock()

    @property
    def jwks_uri(self) -> str | None:
        """The JWKS URL: the configured one, or the one the metadata named (None before discovery)."""
        return self._jwks_uri

    def fresh_key(self, kid: str) -> VerificationKey | None:
        """The key ``kid`` from a fresh cache, without waiting or fetching; None when answering needs
        ``key`` (stale keys, or an unknown kid whose refetch is due). An unknown kid with no refetch
        due is ``kid_unknown`` at once, so forged kids cost an event loop no thread."""
        now = self.clock()
        state = self._state
        if now >= state.fresh_until:
            return None
        key = state.keys.get(kid)
        if key is None and now - self._attempted_at < self.refetch_cooldown:
            raise InvalidToken("kid_unknown")
        return key

    def key(self, kid: str) -> VerificationKey:
        """The key ``kid``, fetching when the cache needs it; ``InvalidToken`` (``kid_unknown`` or
        ``jwks_unavailable``) otherwise. May block for up to ``fetch_timeout``."""
        now = self.clock()
        state = self._state
        if not self._usable(state, now):
            state = self._fetch_waiting()
        elif now >= state.fresh_until and now >= state.retry_at:
            state = self._fetch_unless_busy()
        key = state.keys.get(kid)
        if key is None:
            key = self._kid_refetch(kid)
        if key is None:
            raise InvalidToken("kid_unknown")
        return key

    def refresh(self) -> bool:
        """Fetch now, whatever the cache's age (a warm-up at start); True if keys are usable after."""
        with self._lock:
            now = self.clock()
            return self._usable(self._fetch(now), now)

    # --- the steps ------------------------------------------------------------------------------
    def _usable(self, state: _State, now: float) -> bool:
        return state.validated_at is not None and now - state.validated_at <= self.stale_if_error

    def _fetch_waiting(self) -> _State:
        """No usable keys: every caller waits for one fetch (there is nothing else to serve)."""
        with self._lock:
            now = self.clock()
            state = self._state
            if self._usable(state, now):
                return state  # another thread fetched them while this one waited
            if now < state.retry_at:
                raise InvalidToken("jwks_unavailable", "the last fetch failed moments ago")
            state = self._fetch(now)
            if not self._usable(state, now):
                raise InvalidToken("jwks_unavailable")
            return state

    def _fetch_unless_busy(self) -> _State:
        """Stale keys: one caller revalidates them, the others go on with the keys they have."""
        if not self._lock.acquire(blocking=False):
            return self._state
        try:
            now = self.clock()
            state = self._state
            if now >= state.fresh_until and now >= state.retry_at:
                state = self._fetch(now)
            return state
        finally:
            self._lock.release()

    def _kid_refetch(self, kid: str) -> VerificationKey | None:
        if self.clock() - self._attempted_at < self.refetch_cooldown:
            return None
        with self._lock:
            now = self.clock()
            state = self._state
            if kid in state.keys or now - self._attempted_at < self.refetch_cooldown:
                return state.keys.get(kid)
            state = self._fetch(now)
            return state.keys.get(kid) if self._usable(state, now) else None

    def _fetch(self, now: float) -> _State:
        """Fetch (or revalidate) the JWKS and store the outcome; the caller holds the lock."""
        self._attempted_at = now
        deadline = time.monotonic() + self.fetch_timeout
        state = self._state
        try:
            jwks_uri = self._jwks_uri or self._discover(deadline)
            headers = {"If-None-Match": state.etag} if state.etag and state.keys else {}
            answer = http_get(jwks_uri, deadline=deadline, headers=headers)
            fresh_until = now + self._lifetime(answer.headers)
            if answer.status == 304:
                if not headers:
                    raise FetchFailed("the JWKS answered 304 to an unconditional request")
                state = replace(state, fresh_until=fresh_until, validated_at=now, retry_at=-math.inf)
            else:
                try:
                    keys = jwks_parse(json_document(answer, what="JWKS"))
                except ValueError as exc:
                    raise FetchFailed(str(exc)) from None
                state = _State(
                    keys=keys,
                    etag=answer.headers.get("etag"),
                    fresh_until=fresh_until,
                    validated_at=now,
                    retry_at=-math.inf,
                )
        except FetchFailed as exc:
            logger.warning(
                "issuer_verify: the keys of %s were not refreshed (%s); %d cached keys stay in use",
                self.issuer,
                exc,
                len(state.keys) if self._usable(state, now) else 0,
            )
            state = replace(state, retry_at=now + self.retry_after)
        self._state = state
        return state

    def _discover(self, deadline: float) -> str:
        """The ``jwks_uri`` from the issuer's metadata, whose ``issuer`` must be ours exactly."""
        answer = http_get(self.metadata_uri, deadline=deadline)
        if answer.status != 200:
            raise FetchFailed(f"the metadata answered HTTP {answer.status}")
        metadata = json_document(answer, what="metadata")
        if metadata.get("issuer") != self.issuer:
            raise FetchFailed("the metadata names another issuer")
        try:
            jwks_uri = url_check(metadata.get("jwks_uri"), what="the metadata's jwks_uri")
        except ValueError as exc:
            raise FetchFailed(str(exc)) from None
        self._jwks_uri = jwks_uri
        return jwks_uri

    def _lifetime(self, headers: Mapping[str, str]) -> float:
        """Seconds the answer stays fresh: max-age less Age, within [min_cache_age, max_cache_age]."""
        max_age = cache_max_age(headers.get("cache-control"))
        if max_age is None:
            max_age = self.min_cache_age
        age = headers.get("age", "0").strip()
        if age.isascii() and age.isdigit():
            max_age -= int(age)
        return min(max(max_age, self.min_cache_age), self.max_cache_age)


def cache_max_age(cache_control: str | None) -> float | None:
    """``max-age`` of a Cache-Control value; 0 for ``no-store``/``no-cache``; None when absent."""
    if not cache_control:
        return None
    directives = {part.strip().split("=", 1)[0].strip().lower() for part in cache_control.split(",")}
    if {"no-store", "no-cache"} & directives:
        return 0
    for part in cache_control.split(","):
        match = _MAX_AGE.fullmatch(part.strip())
        if match:
            return int(match.group(1))
    return None


def _check_number(name: str, value: object, *, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ValueError(f"{name} must be a number from {low} to {high}, got {value!r}")
