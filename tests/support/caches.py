"""Cache settings for tests of what happens when Redis is gone."""

from __future__ import annotations

# A loopback port nothing listens on: every Redis call fails at once with a connection error.
REDIS_DOWN = {
    "default": {
        "BACKEND": "lib.cache.ResilientRedisCache",
        "LOCATION": "redis://127.0.0.1:9/0",
        "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
    }
}
