"""A host page's live resources: every ``EVERY`` seconds, one reading of each running container
(the engine's one-shot stats, ``WORKERS`` at a time), turned into rates against the reading before,
kept in the history (per container and the host's totals) and sent to that page: the host's
totals and its top five containers by CPU.

Started by the one websocket consumer when a page subscribes to ``project:P:host:H:stats``
(registered in hosts.registrations), stopped when the last page following that host leaves: one
reader per host per process (SharedReader), however many tabs show it; a host nobody looks at is
not read."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.db import close_old_connections

from hosts.fleet import engine
from hosts.models import Host
from hosts.stats import history
from hosts.stats.sampling import Counters, Sample, between, counters, total
from portal import access

TOPIC = re.compile(r"project:(?P<project>\d+):host:(?P<host>\d+):stats")
#: Seconds between two readings of a host's containers (the history's step).
EVERY = history.STEP
#: The containers a host page lists, busiest first.
TOP = 5
#: Stats calls in flight for one host; a reading of a host takes the engine's time for one.
WORKERS = 8

_rounds = ThreadPoolExecutor(max_workers=16, thread_name_prefix="host-stats")


def _host(user: Any, project_id: int, host_id: int) -> Host | None:
    close_old_connections()
    try:
        host = Host.objects.filter(pk=host_id, project_id=project_id, enabled=True).first()
        if host is None or not access.can(user, "host.view", host.project_id):
            return None
        return host
    finally:
        close_old_connections()


class HostReader:
    """One host's readings, round after round, over one engine connection."""

    def __init__(self, host: Host) -> None:
        self.host_id = host.pk
        self.sdk = engine.client_for(host, timeout=10)
        self.calls = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix=f"stats-{host.pk}")
        self.before: dict[str, Counters] = {}

    def close(self) -> None:
        self.calls.shutdown(wait=False, cancel_futures=True)
        self.sdk.close()

    def _one(self, container_id: str) -> Counters | None:
        try:
            return counters(self.sdk.api.stats(container_id, stream=False, one_shot=True))
        except Exception:  # noqa: BLE001 - gone between the list and the call: not running any more
            return None

    def round(self) -> dict[str, Any]:
        running = self.sdk.api.containers()
        names = {c["Id"]: (c.get("Names") or ["/?"])[0].lstrip("/") for c in running}
        now = dict(zip(names, self.calls.map(self._one, list(names)), strict=True))
        samples: dict[str, Sample] = {}
        for container_id, reading in now.items():
            if reading is None:
                continue
            previous = self.before.get(container_id)
            sample = between(previous, reading) if previous is not None else None
            if sample is not None:
                samples[container_id] = sample
                history.record(self.host_id, container_id, sample)
        self.before = {cid: reading for cid, reading in now.items() if reading is not None}
        figures: dict[str, Any] = {"running": len(running)}
        if samples:
            host = total(list(samples.values()), max(s.t for s in samples.values()))
            history.record(self.host_id, history.HOST, host)
            figures["host"] = host.as_dict()
        busiest = sorted(samples.items(), key=lambda item: (-item[1].cpu, names[item[0]]))[:TOP]
        figures["top"] = [{"id": cid[:12], "name": names[cid], **sample.as_dict()} for cid, sample in busiest]
        return figures


class SharedReader:
    """One host's rounds in this process, whatever the number of pages following it: each
    page's tab once read the engine on its own (eight threads and a stats call per running
    container, every five seconds, per tab)."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.pages: set[asyncio.Queue[dict[str, Any]]] = set()
        self.last: dict[str, Any] | None = None
        self.task: asyncio.Future[None] = asyncio.ensure_future(self._rounds())

    def _send(self, figures: dict[str, Any]) -> None:
        self.last = figures
        for page in self.pages:
            if page.full():  # a page that does not keep up gets the newest, not a backlog
                page.get_nowait()
            page.put_nowait(figures)

    async def _rounds(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            reader = await loop.run_in_executor(_rounds, HostReader, self.host)
        except Exception as exc:  # noqa: BLE001 - told to the pages
            self._send({"error": engine.describe_error(exc, self.host.docker_url), "final": True})
            return
        global readers_started
        readers_started += 1
        try:
            # The first round has nothing to compare with: a second one a second later gives rates.
            await loop.run_in_executor(_rounds, reader.round)
            await asyncio.sleep(1.0)
            while True:
                try:
                    self._send(await loop.run_in_executor(_rounds, reader.round))
                except Exception as exc:  # noqa: BLE001 - the engine stopped answering: said, then tried again
                    self._send({"error": engine.describe_error(exc, self.host.docker_url)})
                await asyncio.sleep(EVERY)
        finally:
            with contextlib.suppress(Exception):
                reader.close()


#: This process's readers by host id, while a page follows the host.
_shared: dict[int, SharedReader] = {}
#: How many readers this process started (a test counts them).
readers_started = 0


async def follow(user: Any, topic: str) -> AsyncIterator[dict[str, Any]]:
    match = TOPIC.fullmatch(topic)
    if match is None:
        return
    loop = asyncio.get_running_loop()
    host = await loop.run_in_executor(_rounds, _host, user, int(match["project"]), int(match["host"]))
    if host is None:
        yield {"error": "no such host"}
        return
    shared = _shared.get(host.pk)
    if shared is None or shared.task.done():
        shared = _shared[host.pk] = SharedReader(host)
    page: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=1)
    shared.pages.add(page)
    try:
        if shared.last is not None:
            page.put_nowait(shared.last)  # a page opened later starts with the latest reading
        while True:
            figures = await page.get()
            yield {key: value for key, value in figures.items() if key != "final"}
            if figures.get("final"):
                return
    finally:
        shared.pages.discard(page)
        if not shared.pages and _shared.get(host.pk) is shared:
            del _shared[host.pk]
            shared.task.cancel()
