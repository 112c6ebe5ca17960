"""Long-running watchers, run by `manage.py watch` and, on the embedded default, inside
the portal process under `make run`. The apps register theirs in ``ready()`` (the hosts
app: Docker engines, vCenters, drift, overdue provisioning); the core runs whatever is
registered without knowing what it watches.

A watcher is an async function taking the ``Shard`` it is responsible for; it
runs until cancelled. ``run_all`` supervises them: one that fails is logged and
restarted with backoff, never taking the others down. Several watcher processes
(each `manage.py watch --shard I/N`, on its own machine) share the objects by
primary key, with the database and Redis between them.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from . import heartbeats

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Shard:
    index: int = 1
    count: int = 1

    @classmethod
    def parse(cls, text: str) -> Shard:
        match = re.fullmatch(r"(\d+)/(\d+)", text.strip())
        if not match or not 1 <= int(match[1]) <= int(match[2]):
            raise ValueError(f"a shard is I/N with 1 <= I <= N, not {text!r}")
        return cls(int(match[1]), int(match[2]))

    def owns(self, pk: int) -> bool:
        return pk % self.count == self.index - 1

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


Watcher = Callable[[Shard], Awaitable[None]]

#: name -> watcher, filled by the apps' ``ready()`` through ``register``.
WATCHERS: dict[str, Watcher] = {}


def register(name: str, watcher: Watcher) -> None:
    WATCHERS[name] = watcher


async def supervise(name: str, watcher: Watcher, shard: Shard) -> None:
    delay = 1.0
    while True:
        try:
            await watcher(shard)
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("watcher %s failed; restarting in %.0fs", name, delay)
            await asyncio.sleep(delay)  # backoff before a restart, not a wait for a condition
            delay = min(delay * 2, 60)


#: How often a watch process says it is alive (portal.heartbeats).
BEAT_SECONDS = 5.0


async def _beat(shard: Shard) -> None:
    """The shard's heartbeat, for the Admin's status page: shards are fixed (I/N), so a
    dead one's hosts wait for it to be restarted (by its supervisor) and the page says so."""
    name = f"watch:{shard}"
    try:
        while True:
            await asyncio.to_thread(heartbeats.beat, name)
            await asyncio.sleep(BEAT_SECONDS)  # a period, not a wait for a condition
    finally:
        await asyncio.to_thread(heartbeats.forget, name)


async def run_all(shard: Shard, names: list[str] | None = None) -> None:
    chosen = {name: w for name, w in WATCHERS.items() if names is None or name in names}
    log.info("watching %s (shard %s)", ", ".join(chosen) or "nothing", shard)
    beating = asyncio.ensure_future(_beat(shard))
    try:
        await asyncio.gather(*(supervise(name, watcher, shard) for name, watcher in chosen.items()))
    finally:
        beating.cancel()
