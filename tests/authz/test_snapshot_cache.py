"""The per-process cache of policy snapshots: its bounds, its size estimate, and where it stays off.

How it is invalidated (PostgreSQL notifications) is in test_snapshot_cache_invalidation.py; what
happens when the notification channel fails, in test_snapshot_cache_channel.py.
"""

from __future__ import annotations

import gc
import threading
import tracemalloc
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from authz.engine import AccessSnapshot, AudienceInfo, GrantInfo, PermissionInfo, RoleInfo, TenantInfo
from authz.snapshot_cache import SnapshotCache, entry_size_estimate
from tests import fake_entra as entra
from tests.support.table_changes import policy_queries


def listener_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "table-change-listener"]


# --- the LRU -------------------------------------------------------------------------------------
def test_it_keeps_at_most_max_entries_dropping_the_least_recently_used():
    cache = SnapshotCache(max_entries=2)
    cache.put("a", 1, "A", size=10)
    cache.put("b", 1, "B", size=10)
    assert cache.get("a", 1) == "A"  # "b" is now the least recently used
    cache.put("c", 1, "C", size=10)
    assert (cache.get("a", 1), cache.get("b", 1), cache.get("c", 1)) == ("A", None, "C")
    assert len(cache) == 2


def test_it_keeps_at_most_max_bytes_by_the_estimate():
    cache = SnapshotCache(max_entries=100, max_bytes=1000, max_entry_bytes=1000)
    for n in range(5):
        cache.put(n, 1, n, size=300)
    assert len(cache) == 3
    assert cache.estimated_bytes == 900
    assert [cache.get(n, 1) for n in range(5)] == [None, None, 2, 3, 4]


def test_an_entry_larger_than_max_entry_bytes_is_not_kept():
    cache = SnapshotCache(max_entries=100, max_bytes=10_000, max_entry_bytes=1000)
    assert cache.put("big", 1, "B", size=1001) is False
    assert cache.get("big", 1) is None
    assert cache.estimated_bytes == 0


def test_an_entry_is_served_only_under_the_generation_it_was_stored_under():
    cache = SnapshotCache(max_entries=10)
    cache.put("a", 7, "A", size=10)
    assert cache.get("a", 8) is None
    assert cache.get("a", 7) == "A"


def test_replacing_an_entry_counts_its_bytes_once():
    cache = SnapshotCache(max_entries=10)
    cache.put("a", 1, "A", size=100)
    cache.put("a", 2, "A2", size=150)
    assert (len(cache), cache.estimated_bytes, cache.get("a", 2)) == (1, 150, "A2")
    cache.clear()
    assert (len(cache), cache.estimated_bytes) == (0, 0)


# --- the size estimate ---------------------------------------------------------------------------
def entry_of(n: int, tenants: int, grants: int, permissions: int, groups: int) -> tuple[tuple, tuple]:
    """A key and value of that shape, with strings of their own (as the database's rows give them)."""
    snapshots = {
        f"tenant-{t:04d}-{n}": AccessSnapshot(
            TenantInfo(f"tenant-{t:04d}-{n}", "active", frozenset({f"exports-{n}", f"imports-{n}"})),
            tuple(
                GrantInfo(
                    id=t * 1000 + g,
                    role=RoleInfo(
                        f"editor-of-things-{n}",
                        tuple(
                            PermissionInfo(f"orders.permission-{p:04d}-{n}", f"feature-{p}-{n}")
                            for p in range(permissions)
                        ),
                    ),
                    subject_type="group",
                    provider=f"{entra.TENANT_ID}-{n}",
                    subject_id=f"{g:08x}-0000-4000-8000-{t:012x}-{n}",
                    valid_from=datetime(2026, 1, 1, tzinfo=UTC),
                    valid_until=datetime(2027, 1, 1, tzinfo=UTC),
                )
                for g in range(grants)
            ),
        )
        for t in range(tenants)
    }
    audience = AudienceInfo(
        f"api://orders-{n}", frozenset(f"orders.permission-{p:04d}-{n}" for p in range(50))
    )
    key = (
        ("audience", f"api://orders-{n}"),
        ("group_ids", tuple(f"{g:08x}-1111-4111-8111-{g:012x}-{n}" for g in range(groups))),
        ("provider", f"{entra.TENANT_ID}-{n}"),
        ("tenant_slug", None),
        ("user_id", f"{entra.OID}-{n}"),
    )
    return key, (snapshots, audience)


@pytest.mark.parametrize(
    ("tenants", "grants", "permissions", "groups"),
    [(0, 0, 0, 0), (1, 1, 3, 0), (1, 3, 10, 5), (5, 20, 8, 40), (2, 200, 40, 200)],
)
def test_the_size_estimate_is_never_below_what_an_entry_takes(tenants, grants, permissions, groups):
    entries = [entry_of(n, tenants, grants, permissions, groups) for n in range(20)]
    estimates = [entry_size_estimate(key, *value) for key, value in entries]
    cache = SnapshotCache(max_entries=100, max_bytes=10**9, max_entry_bytes=10**9)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        cached = [entry_of(n, tenants, grants, permissions, groups) for n in range(20, 40)]
        for (key, value), estimate in zip(cached, estimates, strict=True):
            cache.put(key, 1, value, size=estimate)
        del cached
        taken = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(cache) == 20
    assert sum(estimates) >= taken


# --- where it stays off --------------------------------------------------------------------------
@pytest.mark.django_db
def test_inside_a_transaction_it_reads_the_database_and_starts_no_listener(exchange, orders_policy):
    # The caller's own uncommitted writes are notified to nobody: a transaction always reads.
    # (Every test with the `db` fixture runs in one; on SQLite the cache is off anyway.)
    orders_policy.grant(orders_policy.editor, orders_policy.acme)
    assert exchange().status_code == 200
    with CaptureQueriesContext(connection) as captured:
        assert exchange().status_code == 200
    assert policy_queries(captured)
    assert listener_threads() == []


@pytest.mark.django_db(transaction=True)
def test_policy_cache_off_reads_the_database_every_time(require_postgres, settings, exchange, orders_policy):
    settings.POLICY_CACHE = False
    orders_policy.grant(orders_policy.editor, orders_policy.acme)
    for _ in range(3):
        with CaptureQueriesContext(connection) as captured:
            assert exchange().status_code == 200
        assert policy_queries(captured)
    assert listener_threads() == []


@pytest.mark.django_db(transaction=True)
def test_on_sqlite_the_cache_is_off(settings, exchange, orders_policy):
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's case; PostgreSQL's are in the other modules")
    orders_policy.grant(orders_policy.editor, orders_policy.acme)
    for _ in range(2):
        with CaptureQueriesContext(connection) as captured:
            assert exchange().status_code == 200
        assert policy_queries(captured)
    assert listener_threads() == []
