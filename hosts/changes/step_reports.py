"""A run's step reports, written behind its SSH work instead of waited for, and written
together with every other run's of the same event loop.

A worker applying to many hosts at once reports through its one database thread. Waiting
for each report made every host queue behind all the others at every step; writing each
report on its own still kept that thread busy for most of a push (runs.report_steps says
by how much). So a report is queued, one writer per event loop takes everything queued
since its last write and writes it in one transaction, and ``Reports.settled`` waits only
for its own run's reports, so a run is never finished before its steps have landed.
"""

from __future__ import annotations

import asyncio
import weakref

from channels.db import database_sync_to_async
from django.utils import timezone

from hosts.changes.runs import StepReport, report_steps


class StepWriter:
    """The queued reports of every run of one event loop, and the one task writing them."""

    def __init__(self) -> None:
        self._queued: dict[int, StepReport] = {}
        self._writing: set[int] = set()
        self._failed: dict[int, BaseException] = {}
        self._task: asyncio.Future[None] | None = None
        self._written = asyncio.Condition()

    def add(self, run_id: int, step: str, progress: int, line: str) -> None:
        queued = self._queued.get(run_id)
        if queued is None:
            queued = self._queued[run_id] = StepReport(step, progress)
        queued.step, queued.progress = step, progress
        if line:
            queued.lines.append((timezone.now(), line))
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._write())

    async def _write(self) -> None:
        while self._queued:
            batch, self._queued = self._queued, {}
            self._writing = set(batch)
            try:
                await database_sync_to_async(report_steps, thread_sensitive=True)(batch)
            except Exception as exc:  # noqa: BLE001 - handed to each run's settled(), which raises it
                self._failed.update(dict.fromkeys(batch, exc))
            finally:
                self._writing = set()
                async with self._written:
                    self._written.notify_all()

    async def settled(self, run_id: int) -> None:
        """Every report of ``run_id`` made so far is written; raises what writing them raised."""
        async with self._written:
            await self._written.wait_for(lambda: run_id not in self._queued and run_id not in self._writing)
        failed = self._failed.pop(run_id, None)
        if failed is not None:
            raise failed


_writers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, StepWriter] = weakref.WeakKeyDictionary()


def writer() -> StepWriter:
    loop = asyncio.get_running_loop()
    found = _writers.get(loop)
    if found is None:
        found = _writers[loop] = StepWriter()
    return found


class Reports:
    """One run's reporter: ``await report(step, progress, line)`` returns at once;
    ``settled()`` before the run is finished, so no report lands after."""

    def __init__(self, run_id: int) -> None:
        self.run_id = run_id
        self.step = "connecting"

    async def __call__(self, name: str, progress: int, line: str = "") -> None:
        self.step = name
        writer().add(self.run_id, name, progress, line)

    async def settled(self) -> None:
        await writer().settled(self.run_id)
