"""Writes on accounts: principals, the external identities we issue tokens for."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q

from accounts.models import Principal


class PrincipalIdCache:
    """(provider, subject) → our principal id, per process, re-read from the database after ``max_age``.

    A principal's id never changes and the portal never deletes principals, so the exchange's warm
    path needs no query; the bounded age makes a principal removed by hand fall out of every
    worker's cache within minutes instead of living on as a ``sub`` nobody can look up.
    """

    max_age = 300.0
    max_entries = 100_000
    clock: Callable[[], float] = time.monotonic

    def __init__(self) -> None:
        self._ids: dict[tuple[str, str], tuple[uuid.UUID, float]] = {}
        self._lock = threading.Lock()

    def get(self, provider: str, subject: str) -> uuid.UUID | None:
        found = self._ids.get((provider, subject))
        if found is None or self.clock() - found[1] > self.max_age:
            return None
        return found[0]

    def put(self, provider: str, subject: str, principal_id: uuid.UUID) -> None:
        with self._lock:
            if len(self._ids) >= self.max_entries:
                self._ids.clear()  # rare, and cheaper than LRU bookkeeping on every hit
            self._ids[(provider, subject)] = (principal_id, self.clock())

    def clear(self) -> None:
        with self._lock:
            self._ids.clear()


principal_id_cache = PrincipalIdCache()


def principal_id_get_or_create(*, provider: str, subject: str) -> uuid.UUID:
    """Our id for (``provider``, ``subject``): from the process cache, else one query (or a create)."""
    principal_id = principal_id_cache.get(provider, subject)
    if principal_id is None:
        principal_id = principal_get_or_create(provider=provider, subject=subject).id
        principal_id_cache.put(provider, subject, principal_id)
    return principal_id


def principal_get_or_create(*, provider: str, subject: str) -> Principal:
    """The principal of identity (``provider``, ``subject``), created on its first exchange.

    Warm path: exactly one query. Race-safe: when two first exchanges insert at once, the unique
    constraint lets one win; the loser's insert fails inside its own savepoint and it reads the
    winner's row, so the caller's transaction stays usable and there is one principal.
    """
    try:
        return Principal.objects.get(provider=provider, subject=subject)
    except Principal.DoesNotExist:
        pass
    try:
        with transaction.atomic():
            return Principal.objects.create(provider=provider, subject=subject)
    except IntegrityError:
        return Principal.objects.get(provider=provider, subject=subject)


class PrincipalSeenMemo:
    """Per process: when each principal's ``last_seen_at`` was last written (or found fresh).

    It spares the database a write on every exchange; the conditional UPDATE in ``principal_seen``
    keeps several workers (each with its own memo) to about one write per interval between them.
    """

    interval = timedelta(minutes=5)
    max_entries = 100_000

    def __init__(self) -> None:
        self._written: dict[str, datetime] = {}
        self._lock = threading.Lock()

    def due(self, key: str, now: datetime) -> bool:
        written = self._written.get(key)
        return written is None or now - written >= self.interval or now < written

    def mark(self, key: str, now: datetime) -> None:
        with self._lock:
            if len(self._written) >= self.max_entries:
                self._written.clear()  # rare: at worst one extra conditional UPDATE per principal
            self._written[key] = now

    def clear(self) -> None:
        with self._lock:
            self._written.clear()


principal_seen_memo = PrincipalSeenMemo()


def principal_seen(*, principal_id: uuid.UUID | str, now: datetime) -> bool:
    """Record that the principal exchanged a token at ``now``, at most once per memo interval.

    No query while this process's memo says the last write is recent; otherwise one conditional
    UPDATE that only writes when the stored time is older than the interval (or missing), so
    concurrent workers do not write the same row again. Returns whether a row was written.
    """
    key = str(principal_id)
    memo = principal_seen_memo
    if not memo.due(key, now):
        return False
    stale = Q(last_seen_at__isnull=True) | Q(last_seen_at__lte=now - memo.interval)
    written = Principal.objects.filter(stale, pk=principal_id).update(last_seen_at=now)
    memo.mark(key, now)
    return bool(written)
