"""A Redis cache that degrades instead of failing: the cache here only speeds things up.

Throttle counters and the cached JWKS live in Redis in production. When Redis is unreachable the
service must keep answering (the JWKS from the database, exchanges without rate limiting), not
turn every request into a 500; each failure is logged, without keys or values.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.cache.backends.redis import RedisCache
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)


class ResilientRedisCache(RedisCache):
    """Django's RedisCache where a Redis error reads as a miss and a write as a no-op."""

    def _degraded(self, operation: str, error: RedisError, default: Any) -> Any:
        logger.warning(
            "cache %s failed (%s); continuing without the cache", operation, error.__class__.__name__
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
