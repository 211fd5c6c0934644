"""A Redis cache that degrades instead of failing: the cache here only speeds things up.

Throttle counters and the cached JWKS live in Redis in production. When Redis is unreachable the
service must keep answering (the JWKS from the database, exchanges without rate limiting), not
turn every request into a 500. Failures are logged without keys or values, and at most one line per
``WARNING_INTERVAL`` seconds per process, with the count of those left out: a Redis outage under load
fails several cache operations per request, and a line for each buried everything else in the log.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from django.core.cache.backends.redis import RedisCache
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

WARNING_INTERVAL = 10.0


class _WarningGate:
    """Lets one warning through per interval and counts the ones it holds back (process-wide:
    Django keeps one cache object per thread)."""

    clock: Callable[[], float] = time.monotonic

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: float | None = None
        self.held_back = 0

    def open(self) -> int | None:
        """None while the interval runs; otherwise how many warnings were held back since the last."""
        now = self.clock()
        with self._lock:
            if self._last is not None and now - self._last < WARNING_INTERVAL:
                self.held_back += 1
                return None
            held_back, self.held_back, self._last = self.held_back, 0, now
            return held_back


warning_gate = _WarningGate()


class ResilientRedisCache(RedisCache):
    """Django's RedisCache where a Redis error reads as a miss and a write as a no-op."""

    def _degraded(self, operation: str, error: RedisError, default: Any) -> Any:
        held_back = warning_gate.open()
        if held_back is not None:
            logger.warning(
                "cache %s failed (%s); continuing without the cache%s",
                operation,
                error.__class__.__name__,
                f" ({held_back} more cache failures since the last warning)" if held_back else "",
            )
        return default

    def get(self, key: Any, default: Any = None, version: int | None = None) -> Any:
        try:
            return super().get(key, default, version)
        except RedisError as error:
            return self._degraded("get", error, default)

    def get_many(self, keys: Any, version: int | None = None) -> dict:
        try:
            return super().get_many(keys, version)
        except RedisError as error:
            return self._degraded("get_many", error, {})

    def set(self, key: Any, value: Any, timeout: Any = 300, version: int | None = None) -> None:
        try:
            super().set(key, value, timeout, version)
        except RedisError as error:
            self._degraded("set", error, None)

    def add(self, key: Any, value: Any, timeout: Any = 300, version: int | None = None) -> bool:
        try:
            return super().add(key, value, timeout, version)
        except RedisError as error:
            return self._degraded("add", error, False)

    def delete(self, key: Any, version: int | None = None) -> bool:
        try:
            return super().delete(key, version)
        except RedisError as error:
            return self._degraded("delete", error, False)

    def incr(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        try:
            return super().incr(key, delta, version)
        except RedisError as error:
            # Counting is lost, not the request: behave as if this were the first hit.
            return self._degraded("incr", error, delta)

    def clear(self) -> None:
        try:
            super().clear()
        except RedisError as error:
            self._degraded("clear", error, None)
