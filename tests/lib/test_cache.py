"""Redis as the cache degrades instead of failing: requests go on without it."""

import logging

from django.core.cache import cache
from django.test import override_settings

# A loopback port nothing listens on: every Redis call fails at once with a connection error.
DOWN = {
    "default": {
        "BACKEND": "lib.cache.ResilientRedisCache",
        "LOCATION": "redis://127.0.0.1:9/0",
        "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
    }
}


@override_settings(CACHES=DOWN)
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
