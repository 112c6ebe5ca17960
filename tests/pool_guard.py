"""A test fails when a thread it started ended still holding a PostgreSQL connection.

The portal draws connections from psycopg's pool (settings: ``OPTIONS["pool"]``). Django
gives a thread's connection back only when that thread closes it, so ORM work on a thread
that then ends (``asyncio.to_thread``, a loop's default executor, a bare ``sync_to_async``)
keeps a slot for good: a process leaking one per task or per test ran out of its 8 and
answered "couldn't get a connection after 10 sec". Here every connection taken is noted
with its thread; after each test, one still out whose thread has died fails the test with
where it was taken (and goes back to the pool, so later tests are not blamed). The tests'
Celery worker runs guarded too (``python -m tests.pool_guard worker ...``): what its tasks
leave behind fails the test that was running.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = str(Path(__file__).resolve().parents[1])
_taken: dict[int, tuple[threading.Thread, Any, Any, list[str]]] = {}
#: Where the guarded Celery worker writes what its tasks left (tests.conftest sets it).
WORKER_REPORT = os.environ.get("PORTAL_TEST_POOL_REPORT", "")


def _where() -> list[str]:
    """The portal's and the tests' frames that asked for the connection, innermost last."""
    frames = []
    frame = sys._getframe(2)
    while frame is not None and len(frames) < 12:
        name = frame.f_code.co_filename
        if name.startswith(REPO) and "/.venv/" not in name and not name.endswith("pool_guard.py"):
            frames.append(f"{name[len(REPO) + 1 :]}:{frame.f_lineno} {frame.f_code.co_name}")
        frame = frame.f_back
    return frames[::-1]


def install() -> None:
    try:
        from psycopg_pool import ConnectionPool
    except ImportError:
        return
    if getattr(ConnectionPool, "_portal_guarded", False):
        return
    getconn, putconn = ConnectionPool.getconn, ConnectionPool.putconn

    def guarded_getconn(self: Any, *args: Any, **kwargs: Any) -> Any:
        conn = getconn(self, *args, **kwargs)
        _taken[id(conn)] = (threading.current_thread(), self, conn, _where())
        return conn

    def guarded_putconn(self: Any, conn: Any) -> None:
        _taken.pop(id(conn), None)
        putconn(self, conn)

    ConnectionPool.getconn, ConnectionPool.putconn = guarded_getconn, guarded_putconn  # type: ignore[method-assign]
    ConnectionPool._portal_guarded = True  # type: ignore[attr-defined]


def left_by_dead_threads() -> list[str]:
    """Connections still out whose thread has ended: returned to their pool, and described."""
    found = []
    for key, (thread, pool, conn, where) in list(_taken.items()):
        if thread.is_alive():
            continue
        _taken.pop(key, None)
        frames = "\n    ".join(where or ["(no portal frame)"])
        # Whether Django closed it without giving it back (closed) or never closed it (open).
        state = "closed" if getattr(conn, "closed", False) else "open"
        found.append(f"thread {thread.name!r}, connection {state}, taken at:\n    {frames}")
        pool.putconn(conn)
    return found


def pytest_configure(config: pytest.Config) -> None:
    global WORKER_REPORT
    install()
    if not WORKER_REPORT:
        WORKER_REPORT = str(Path(tempfile.gettempdir()) / f"portal-pool-guard-{os.getpid()}.txt")


def _from_worker() -> list[str]:
    report = Path(WORKER_REPORT) if WORKER_REPORT else None
    if report is None or not report.exists() or not report.stat().st_size:
        return []
    text = report.read_text()
    report.write_text("")
    return [f"in the Celery worker: {text.strip()}"]


@pytest.fixture(autouse=True)
def no_connection_left_by_an_ended_thread() -> Iterator[None]:
    yield
    leaked = left_by_dead_threads() + _from_worker()
    if leaked:
        pytest.fail(
            "a thread ended holding a database connection (use channels' database_sync_to_async,"
            " tests.threads, or close it):\n" + "\n".join(leaked),
            pytrace=False,
        )


def _worker() -> None:
    """``celery`` with the guard: after each task, what it left goes to WORKER_REPORT."""
    install()
    from celery import signals
    from celery.__main__ import main

    @signals.task_postrun.connect(weak=False)
    def check(sender: Any = None, **_: Any) -> None:
        leaked = left_by_dead_threads()
        if leaked and WORKER_REPORT:
            with open(WORKER_REPORT, "a") as report:
                report.write(f"task {getattr(sender, 'name', sender)}: " + "\n".join(leaked) + "\n")

    sys.argv = ["celery", *sys.argv[1:]]
    main()


if __name__ == "__main__":
    _worker()
