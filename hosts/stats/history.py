"""The last hour of stats, per container and per host: a ring buffer of samples, one every
``STEP`` seconds at most, in Redis when the portal has it (every daphne then draws the same
history) and in this process on the embedded default. Nothing of it reaches the database, and
a series nobody fed for an hour is gone (Redis expires it; the process keeps ``MAX_SERIES``).

Fed by the stats streams that pages watch (a container's page, a host's page): a container
nobody looks at has no history, as the issue asks."""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict, deque

from hosts.stats.sampling import Sample
from portal import redis_client

#: Seconds between two samples kept of one series, and how long a series lasts.
STEP = 5.0
KEEP_SECONDS = 3600
SIZE = int(KEEP_SECONDS / STEP)
#: The series of a host's totals (a container's is its id).
HOST = "host"
#: Series this process keeps on the embedded default (the least recently fed go first).
MAX_SERIES = 5000

_lock = threading.Lock()
_memory: OrderedDict[str, deque[Sample]] = OrderedDict()


def _key(host_id: int, series: str) -> str:
    return f"portal:stats:{host_id}:{series[:64]}"


def record(host_id: int, series: str, sample: Sample) -> bool:
    """Keep ``sample`` unless the series has one from less than STEP seconds ago."""
    key = _key(host_id, series)
    redis = redis_client.client()
    if redis is None:
        with _lock:
            kept = _memory.pop(key, None) or deque(maxlen=SIZE)
            _memory[key] = kept
            while len(_memory) > MAX_SERIES:
                _memory.popitem(last=False)
            if kept and sample.t - kept[-1].t < STEP:
                return False
            kept.append(sample)
            return True
    # The gate lets one writer a STEP through, whichever daphne's page fed it.
    if not redis.set(key + ":gate", 1, nx=True, px=int(STEP * 1000) - 50):
        return False
    with redis.pipeline(transaction=False) as pipe:
        pipe.rpush(key, json.dumps(sample.as_dict()))
        pipe.ltrim(key, -SIZE, -1)
        pipe.expire(key, KEEP_SECONDS)
        pipe.execute()
    return True


def read(host_id: int, series: str) -> list[Sample]:
    """The series, oldest first, within the last hour."""
    key = _key(host_id, series)
    since = time.time() - KEEP_SECONDS
    redis = redis_client.client()
    if redis is None:
        with _lock:
            kept = list(_memory.get(key, ()))
    else:
        kept = [Sample(**json.loads(item)) for item in redis.lrange(key, 0, -1)]
    return [s for s in kept if s.t >= since]


def forget(host_id: int, series: str) -> None:
    """Drop a series (the tests' clean slate; a removed container's history simply expires)."""
    key = _key(host_id, series)
    redis = redis_client.client()
    if redis is None:
        with _lock:
            _memory.pop(key, None)
    else:
        redis.delete(key, key + ":gate")
