"""Redis as the cache degrades instead of failing: requests go on without it."""

import logging

import pytest
from django.core.cache import cache
from django.test import override_settings

from lib.cache import WARNING_INTERVAL, warning_gate
from tests.support.caches import REDIS_DOWN


@pytest.fixture
def gate_clock(monkeypatch):
    """The warning gate on a clock the test moves, starting with no warning given yet."""
    now = [1000.0]
    monkeypatch.setattr(warning_gate, "clock", lambda: now[0])
    monkeypatch.setattr(warning_gate, "_last", None)
    monkeypatch.setattr(warning_gate, "held_back", 0)
    return now


@override_settings(CACHES=REDIS_DOWN)
def test_reads_miss_and_writes_are_dropped_when_redis_is_down(caplog, gate_clock):
    with caplog.at_level(logging.WARNING, logger="lib.cache"):
        assert cache.get("k", "default") == "default"
        cache.set("k", "v")
        assert cache.add("k", "v") is False
        assert cache.get_many(["k"]) == {}
        assert cache.incr("k") == 1
        cache.delete("k")
        cache.clear()
    # One line for the seven failures: an outage under load must not flood the log.
    assert len(caplog.records) == 1
    assert all("k" not in record.getMessage().split() for record in caplog.records)


@override_settings(CACHES=REDIS_DOWN)
def test_an_outage_logs_one_line_per_interval_with_the_count_left_out(caplog, gate_clock):
    with caplog.at_level(logging.WARNING, logger="lib.cache"):
        for _ in range(50):
            cache.get("k")
        gate_clock[0] += WARNING_INTERVAL
        cache.get("k")
    assert [record.getMessage() for record in caplog.records] == [
        "cache get failed (ConnectionError); continuing without the cache",
        "cache get failed (ConnectionError); continuing without the cache"
        " (49 more cache failures since the last warning)",
    ]
