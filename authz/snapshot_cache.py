"""The exchange's policy snapshots, kept per process for as long as PostgreSQL says nothing changed.

A warm exchange then needs no database round trip. The rules that make this safe:

- **Invalidation.** Triggers on every table the snapshot reads (authz migration 0006) notify
  ``lib.table_changes`` when a statement writes to one, whoever wrote it (the portal, ``import_policy``,
  a hand-written SQL statement). Each entry is stored under the listener's generation and served
  only while the generation is still the same, so a change is honoured from the moment its
  notification arrives (milliseconds after the commit), and the cache is emptied to free the memory.
- **No channel, no cache.** While the listening connection is not confirmed (starting, broken,
  reconnecting, or silent for longer than its heartbeat allows), every exchange reads the database;
  a reconnection starts from an empty cache, since notifications sent meanwhile were lost.
- **A change during a read.** The generation is read before the query and the result stored only
  under it: a notification that arrives while the query runs moves the generation, and the result
  is served once but never kept.
- **Own writes.** A caller inside a transaction reads the database: its uncommitted writes are
  visible to it but notified to nobody.
- **Bounded memory.** An LRU of at most ``POLICY_CACHE_ENTRIES`` entries (10,000 by default) and
  ``MAX_BYTES`` (32 MiB) by an estimate of each entry's size; an entry estimated above
  ``MAX_ENTRY_BYTES`` (a caller with thousands of grants) is not kept.
- **Where it is off.** ``POLICY_CACHE=off``, and databases without LISTEN (SQLite in development).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

from django.conf import settings
from django.db import connection

from authz import selectors
from authz.engine import AccessSnapshot, AudienceInfo
from lib.table_changes import table_changes

ExchangeInputs = tuple[dict[str, AccessSnapshot], AudienceInfo | None]

MAX_BYTES = 32 * 1024 * 1024
MAX_ENTRY_BYTES = 1024 * 1024
# What an entry holds in memory, in bytes (CPython 3.11, measured with tracemalloc; the test
# tests/authz/test_snapshot_cache.py checks the estimate never falls below the measure). A caller
# with one grant of three permissions takes about 3 KB, estimated at 4 KB.
_ENTRY_BYTES = 1400  # the key, the dict, the audience, the LRU slot
_SNAPSHOT_BYTES = 768  # one tenant's snapshot and its tenant
_GRANT_BYTES = 640  # one grant, its role and its strings
_PERMISSION_BYTES = 288  # one permission in a grant, or one feature of a tenant
_AUDIENCE_PERMISSION_BYTES = 128  # one permission code the audience registered
_GROUP_BYTES = 112  # one group id in the key


class SnapshotCache:
    """An LRU of ``(generation, value)`` by key, bounded in entries and in estimated bytes."""

    def __init__(
        self, *, max_entries: int, max_bytes: int = MAX_BYTES, max_entry_bytes: int = MAX_ENTRY_BYTES
    ):
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.max_entry_bytes = max_entry_bytes
        self._entries: OrderedDict[Hashable, tuple[int, Any, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: Hashable, generation: int) -> Any | None:
        """The value stored under ``generation`` for ``key``, else ``None``."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] != generation:
                return None
            self._entries.move_to_end(key)
            return entry[1]

    def put(self, key: Hashable, generation: int, value: Any, *, size: int) -> bool:
        """Keep ``value`` under ``generation``, dropping the least recently used beyond the bounds."""
        if size > self.max_entry_bytes or self.max_entries < 1:
            return False
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old[2]
            self._entries[key] = (generation, value, size)
            self._bytes += size
            while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
                _key, (_generation, _value, dropped) = self._entries.popitem(last=False)
                self._bytes -= dropped
        return True

    def forked(self) -> None:
        """In a forked child: a fresh lock (another thread may have held it) and nothing cached."""
        self._lock = threading.Lock()
        self.clear()

    def clear(self, _table: str | None = None) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def estimated_bytes(self) -> int:
        return self._bytes


snapshot_cache = SnapshotCache(max_entries=settings.POLICY_CACHE_ENTRIES)
# Any change to a cached table (or to the channel) empties it: entries of an older generation are
# never served anyway; this frees their memory.
table_changes.subscribe(snapshot_cache.clear)
os.register_at_fork(after_in_child=snapshot_cache.forked)


def exchange_inputs_cached(**query: Any) -> ExchangeInputs:
    """``authz.selectors.exchange_inputs_get(**query)``, from this process's cache when it may be trusted."""
    if not settings.POLICY_CACHE or connection.vendor != "postgresql" or connection.in_atomic_block:
        return selectors.exchange_inputs_get(**query)
    generation = table_changes.generation()  # before the query: see "a change during a read"
    if generation is None:
        return selectors.exchange_inputs_get(**query)
    key = _key(query)
    found = snapshot_cache.get(key, generation)
    if found is not None:
        snapshots, audience = found
        return dict(snapshots), audience  # a caller may change its dict, never the shared one
    snapshots, audience = selectors.exchange_inputs_get(**query)
    snapshot_cache.put(
        key, generation, (dict(snapshots), audience), size=entry_size_estimate(key, snapshots, audience)
    )
    return snapshots, audience


def _key(query: dict[str, Any]) -> tuple:
    # Every argument is part of the key, so one added to the selector cannot be forgotten here.
    return tuple((name, _canonical(value)) for name, value in sorted(query.items()))


def _canonical(value: Any) -> Hashable:
    if value is None or isinstance(value, str | int):
        return value
    return tuple(sorted(set(value)))  # the group ids, in any order or repetition


def entry_size_estimate(
    key: tuple, snapshots: dict[str, AccessSnapshot], audience: AudienceInfo | None
) -> int:
    """An upper estimate of what one entry holds in memory, in bytes."""
    size = _ENTRY_BYTES + _GROUP_BYTES * sum(len(value) for _name, value in key if isinstance(value, tuple))
    for snapshot in snapshots.values():
        size += _SNAPSHOT_BYTES + _PERMISSION_BYTES * len(snapshot.tenant.features)
        for grant in snapshot.grants:
            size += _GRANT_BYTES + _PERMISSION_BYTES * len(grant.role.permissions)
    if audience is not None:
        size += _AUDIENCE_PERMISSION_BYTES * len(audience.permissions)
    return size
