"""One synchronous Redis client per process, for the portal's own few commands (publishing
live events from sync code, worker heartbeats, the readiness PING).

Its pool blocks at its limit instead of failing: under a burst, callers wait their turn
for a connection rather than get redis-py's "Too many connections". None on the embedded
default (no REDIS_URL).
"""

from __future__ import annotations

import threading

import redis
from django.conf import settings

#: Connections this process may hold for these commands; a command waits up to
#: WAIT_SECONDS for one to come free.
POOL_SIZE = 8
WAIT_SECONDS = 5

_lock = threading.Lock()
_client: redis.Redis | None = None


def client() -> redis.Redis | None:
    global _client
    if not settings.REDIS_URL:
        return None
    with _lock:
        if _client is None:
            pool = redis.BlockingConnectionPool.from_url(
                settings.REDIS_URL,
                max_connections=POOL_SIZE,
                timeout=WAIT_SECONDS,
                socket_connect_timeout=2,
                socket_timeout=5,
            )
            _client = redis.Redis(connection_pool=pool)
        return _client
