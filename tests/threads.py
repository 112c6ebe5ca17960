"""Database work in a thread other than the test's, giving its connection back when done."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from django.db import connections

P = ParamSpec("P")
T = TypeVar("T")


async def orm_in_thread(fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """Run ``fn`` (which touches the ORM) in a thread of its own, which closes its database
    connections before it hands the result back.

    On PostgreSQL the portal draws connections from psycopg's pool, and a thread that ends
    still holding one keeps that slot for good: one leaked slot per test drained the pool (8)
    within a CI run ("couldn't get a connection after 10 sec"), and tests.pool_guard fails a
    test that leaves one. Not ``asyncio.to_thread``, which closes nothing. No longer channels'
    ``database_sync_to_async``: in some CI runs (late in the suite, after the browser tests)
    every connection taken through it was left open, never in a run of those tests alone. Its
    closing runs outside the context the function ran in (asgiref copies the caller's context
    into the worker and re-homes its locals there) and closes only what it judges old; a plain
    thread starts with an empty context and closes whatever it opened, unconditionally,
    before it answers.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def deliver(ok: bool, value: object) -> None:
        if future.done():  # the awaiting task was cancelled
            return
        if ok:
            future.set_result(value)  # type: ignore[arg-type]
        else:
            future.set_exception(value)  # type: ignore[arg-type]

    def run() -> None:
        ok, value = True, None
        try:
            value = fn(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting task, raised there
            ok, value = False, exc
        finally:
            connections.close_all()
        # A closed loop: nobody waits for this any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(deliver, ok, value)

    threading.Thread(target=run, name="orm-in-thread", daemon=True).start()
    return await future


def closing_connections(fn: Callable[P, T]) -> Callable[P, T]:
    """``fn`` for a thread of its own that ends with it: its database connections closed after
    (back to the pool), for the reason ``orm_in_thread`` gives."""

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return fn(*args, **kwargs)
        finally:
            connections.close_all()

    return run
