"""A host page's live resources: every ``EVERY`` seconds, one reading of each running container
(the engine's one-shot stats, ``WORKERS`` at a time), turned into rates against the reading before,
kept in the history (per container and the host's totals) and sent to that page: the host's
totals and its top five containers by CPU.

Started by the one websocket consumer when a page subscribes to ``project:P:host:H:stats``
(registered in hosts.registrations), stopped when it leaves; a host nobody looks at is not read."""

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


async def follow(user: Any, topic: str) -> AsyncIterator[dict[str, Any]]:
    match = TOPIC.fullmatch(topic)
    if match is None:
        return
    loop = asyncio.get_running_loop()
    host = await loop.run_in_executor(_rounds, _host, user, int(match["project"]), int(match["host"]))
    if host is None:
        yield {"error": "no such host"}
        return
    try:
        reader = await loop.run_in_executor(_rounds, HostReader, host)
    except Exception as exc:  # noqa: BLE001 - told to the page
        yield {"error": engine.describe_error(exc, host.docker_url)}
        return
    try:
        # The first round has nothing to compare with: a second one a second later gives rates.
        await loop.run_in_executor(_rounds, reader.round)
        await asyncio.sleep(1.0)
        while True:
            try:
                yield await loop.run_in_executor(_rounds, reader.round)
            except Exception as exc:  # noqa: BLE001 - the engine stopped answering: said, then tried again
                yield {"error": engine.describe_error(exc, host.docker_url)}
            await asyncio.sleep(EVERY)
    finally:
        with contextlib.suppress(Exception):
            reader.close()
