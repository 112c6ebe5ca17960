"""Test helpers: run the engines watcher on a thread of the test process, and a private engine to kill."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hosts.fleet.watch import EngineWatcher
from portal.watchers import Shard
from tests.lab import common, engines


@contextlib.contextmanager
def running_watcher(interval: float = 1.0, concurrency: int = 4) -> Iterator[EngineWatcher]:
    loop = asyncio.new_event_loop()
    watcher = EngineWatcher.__new__(EngineWatcher)
    ready = threading.Event()
    holder: dict[str, Any] = {}

    def run() -> None:
        asyncio.set_event_loop(loop)

        async def main() -> None:
            EngineWatcher.__init__(watcher, Shard(), interval, concurrency)
            holder["task"] = asyncio.current_task()
            ready.set()
            await watcher.run()

        with contextlib.suppress(asyncio.CancelledError):
            loop.run_until_complete(main())

    thread = threading.Thread(target=run, name="test-engine-watcher", daemon=True)
    thread.start()
    ready.wait(10)
    try:
        yield watcher
    finally:
        loop.call_soon_threadsafe(holder["task"].cancel)
        thread.join(15)
        loop.close()


def kill_dockerd(workdir: Path, name: str) -> None:
    pid = int((workdir / name / "dockerd.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    common.wait_until(
        lambda: not common.port_open("127.0.0.1", _state(workdir, name).port), timeout=15, what="dead"
    )


def start_dockerd(workdir: Path, name: str) -> None:
    state = _state(workdir, name)
    with contextlib.suppress(FileNotFoundError):
        (workdir / name / "dockerd.pid").unlink()
    engines._start_dockerd(state, workdir)


def _state(workdir: Path, name: str) -> engines.EngineState:
    return engines.EngineState(**json.loads((workdir / name / "state.json").read_text()))
