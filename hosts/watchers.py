"""Long-running watchers (Docker engines, vCenters), run by `manage.py watch` and,
on the embedded default, inside the portal process under `make run`.

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

#: name -> watcher. Each area registers its own (one line here when it lands).
WATCHERS: dict[str, Watcher] = {}


async def _engines(shard: Shard) -> None:
    from hosts.fleet.watch import watch_engines  # imported late: it needs the models

    await watch_engines(shard)


WATCHERS["engines"] = _engines


async def _vcenters(shard: Shard) -> None:
    from hosts.vsphere.watch import watch_vcenters  # imported late: it needs the models

    await watch_vcenters(shard)


WATCHERS["vcenters"] = _vcenters


async def _drift(shard: Shard) -> None:
    from hosts.changes.drift import watch_drift  # imported late: it needs the models

    await watch_drift(shard)


WATCHERS["drift"] = _drift


async def _provisioning(shard: Shard) -> None:
    from hosts.provision.flow import watch_overdue  # imported late: it needs the models

    await watch_overdue(shard)


WATCHERS["provisioning"] = _provisioning


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


async def run_all(shard: Shard, names: list[str] | None = None) -> None:
    chosen = {name: w for name, w in WATCHERS.items() if names is None or name in names}
    log.info("watching %s (shard %s)", ", ".join(chosen) or "nothing", shard)
    await asyncio.gather(*(supervise(name, watcher, shard) for name, watcher in chosen.items()))
