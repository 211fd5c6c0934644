"""Redis as the cache degrades instead of failing: requests go on without it."""

import logging

from django.core.cache import cache
from django.test import override_settings

from tests.support.caches import REDIS_DOWN


@override_settings(CACHES=REDIS_DOWN)
def test_reads_miss_and_writes_are_dropped_when_redis_is_down(caplog):
    with caplog.at_level(logging.WARNING, logger="lib.cache"):
        assert cache.get("k", "default") == "default"
        cache.set("k", "v")
        assert cache.add("k", "v") is False
        assert cache.get_many(["k"]) == {}
        assert cache.incr("k") == 1
        cache.delete("k")
        cache.clear()
    assert len(caplog.records) == 7
    assert all("k" not in record.getMessage().split() for record in caplog.records)
