"""Who is alive behind the web processes: Celery workers (from their own heartbeats)
and watch shards, each beating into one Redis hash that /healthz and the Admin's
status page read. Nothing is sent to a worker to find out: a probe that queued a task
per request answered "down" whenever the workers were merely busy.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from . import redis_client

log = logging.getLogger(__name__)

KEY = "portal:heartbeats"
#: A beat older than this means the process is gone (Celery beats every 2 s, watchers every 5 s).
ALIVE_SECONDS = 15.0
#: Entries older than this are dropped: a renamed or retired process is not news for ever.
FORGET_SECONDS = 24 * 3600.0


@dataclass(frozen=True)
class Beat:
    name: str  # "worker:celery@host" or "watch:1/2"
    age: float

    @property
    def kind(self) -> str:
        return self.name.split(":", 1)[0]

    @property
    def alive(self) -> bool:
        return self.age <= ALIVE_SECONDS


def beat(name: str) -> None:
    """Record that ``name`` is alive; a Redis that does not answer is logged, not raised."""
    r = redis_client.client()
    if r is None:
        return
    try:
        r.hset(KEY, name, f"{time.time():.3f}")
    except Exception as exc:  # noqa: BLE001 - a heartbeat must never take its process down
        log.debug("heartbeat of %s not recorded: %s", name, exc)


def forget(name: str) -> None:
    r = redis_client.client()
    if r is not None:
        try:
            r.hdel(KEY, name)
        except Exception as exc:  # noqa: BLE001 - shutting down anyway
            log.debug("heartbeat of %s not removed: %s", name, exc)


def beats() -> list[Beat]:
    """Every process that beat in the last day, by name; raises if Redis does not answer."""
    r = redis_client.client()
    if r is None:
        return []
    now = time.time()
    found = []
    for raw_name, raw_at in r.hgetall(KEY).items():
        name = raw_name.decode() if isinstance(raw_name, bytes) else str(raw_name)
        age = max(0.0, now - float(raw_at))
        if age > FORGET_SECONDS:
            r.hdel(KEY, raw_name)
            continue
        found.append(Beat(name, age))
    return sorted(found, key=lambda b: b.name)


def workers_summary() -> str:
    """/healthz's word on the task workers: "ok" while one beats, else what is wrong."""
    workers = [b for b in beats() if b.kind == "worker"]
    alive = [b for b in workers if b.alive]
    if alive:
        return "ok"
    if workers:
        latest = min(b.age for b in workers)
        return f"no task worker has beaten for {latest:.0f}s"
    return "no task worker has ever beaten"
