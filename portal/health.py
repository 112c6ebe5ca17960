"""/healthz: is each service the portal depends on answering? Checked concurrently,
each with a deadline, so one hung service cannot hang the probe.

The probe is anonymous and a real check sends a Celery task, so callers share
results: one check at a time per portal process, its answer reused for
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
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.cache import cache
from django.db import connection

from .tasks import ping

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


def _tasks() -> None:
    # retry=False: with the broker down, fail now rather than retry for seconds.
    result = ping.apply_async(retry=False)
    try:
        answer = result.get(timeout=DEADLINE - 0.5)
    except TimeoutError as exc:
        raise RuntimeError("no task worker answered") from exc
    if answer != "pong":
        raise RuntimeError(f"unexpected task answer {answer!r}")


async def _channel_layer() -> None:
    layer = get_channel_layer()
    channel = await layer.new_channel("healthz.")
    await layer.send(channel, {"type": "healthz", "nonce": channel})
    message = await layer.receive(channel)
    if message.get("nonce") != channel:
        raise RuntimeError("channel layer returned another message")


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


async def report() -> dict[str, str]:
    checks = {
        "database": _threaded(_database),
        "channel_layer": _channel_layer,
        "cache": _threaded(_cache),
        "tasks": _threaded(_tasks),
    }
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
