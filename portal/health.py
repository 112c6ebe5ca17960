"""Health checks for load balancers and people.

- ``/healthz/live``: the process answers (nothing else is asked).
- ``/healthz/ready``: what a request needs answers: the database, Redis (PING) and the
  cache. Each check runs concurrently with a deadline, so one hung service cannot hang
  the probe; none goes through the channel layer, which users' websockets keep busy.
- ``/healthz``: ready's checks plus the task workers, judged by their own heartbeats
  (portal.heartbeats), never by sending them a task.

Callers share results: one check at a time per portal process, its answer reused for
HEALTHZ_CACHE_SECONDS. Kept in the process, not in the cache, because the cache is
one of the things checked and must not be needed to say it is down.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import cache
from django.db import connection

from . import heartbeats, redis_client

DEADLINE = 3.0


def _database() -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    finally:
        # Runs on a throwaway thread: don't leave its connection open behind it.
        connection.close()


def _cache() -> None:
    key = f"healthz:{uuid.uuid4().hex}"
    cache.set(key, "ok", timeout=10)
    if cache.get(key) != "ok":
        raise RuntimeError("cache did not return what was just stored")
    cache.delete(key)


def _redis() -> None:
    r = redis_client.client()
    if r is not None and r.ping() is not True:
        raise RuntimeError("Redis did not answer PING")


def _workers() -> None:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return  # the embedded default: tasks run in this very process
    summary = heartbeats.workers_summary()
    if summary != "ok":
        raise RuntimeError(summary)


def _scrub(text: str) -> str:
    """Error texts may quote a service URL; never show its password."""
    for url in (settings.DATABASES["default"].get("PASSWORD"), settings.REDIS_URL):
        if not url:
            continue
        password = urlsplit(url).password if "://" in url else url
        if password:
            text = text.replace(password, "********")
    return text


async def _check(check: Callable[[], Awaitable[None]]) -> str:
    try:
        await asyncio.wait_for(check(), timeout=DEADLINE)
    except TimeoutError:
        return f"no answer within {DEADLINE:.0f}s"
    except Exception as exc:  # noqa: BLE001 - the probe reports any failure as text
        return _scrub(f"{type(exc).__name__}: {exc}".strip()) or type(exc).__name__
    return "ok"


def _threaded(check: Callable[[], None]) -> Callable[[], Awaitable[None]]:
    # thread_sensitive=False: run beside the other checks, not queued behind them.
    return sync_to_async(check, thread_sensitive=False)


#: What a request needs; /healthz/ready answers on these alone.
READY = ("database", "cache", "redis")


async def report() -> dict[str, str]:
    checks = {"database": _threaded(_database), "cache": _threaded(_cache)}
    if settings.REDIS_URL:
        checks["redis"] = _threaded(_redis)
    checks["tasks"] = _threaded(_workers)
    results = await asyncio.gather(*(_check(check) for check in checks.values()))
    return dict(zip(checks, results, strict=True))


class _Shared:
    """The last answer, until when it stands, and the check under way (if any)."""

    result: dict[str, str] | None = None
    expires: float = 0.0
    running: asyncio.Task[dict[str, str]] | None = None


async def _run_and_keep() -> dict[str, str]:
    result = await report()
    _Shared.result = result
    _Shared.expires = time.monotonic() + float(settings.HEALTHZ_CACHE_SECONDS)
    return result


async def shared_report(*, fresh: bool = False) -> dict[str, str]:
    """``report()``, at most one real run at a time and none while the last answer stands;
    ``fresh`` (an Admin's) skips the stored answer but still joins a check under way."""
    if not fresh and _Shared.result is not None and time.monotonic() < _Shared.expires:
        return _Shared.result
    loop = asyncio.get_running_loop()
    running = _Shared.running
    if running is None or running.done() or running.get_loop() is not loop:
        running = _Shared.running = loop.create_task(_run_and_keep())
    # shield: a caller that gives up (disconnects) does not cancel the others' check.
    return await asyncio.shield(running)
