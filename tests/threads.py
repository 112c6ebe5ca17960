"""Database work in a thread other than the test's, giving its connection back when done."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from channels.db import database_sync_to_async
from django.db import connections

P = ParamSpec("P")
T = TypeVar("T")


async def orm_in_thread(fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """Run ``fn`` (which touches the ORM) in a worker thread and close its connection after.

    Not ``asyncio.to_thread``: on PostgreSQL the portal draws connections from psycopg's
    pool, and a thread that ends still holding one keeps that slot for good. One leaked
    slot per test drained the pool (8) within a CI worker's run and later tests failed
    with "couldn't get a connection after 10 sec". ``database_sync_to_async`` closes the
    thread's connection afterwards, which hands it back to the pool.
    """
    return await database_sync_to_async(fn, thread_sensitive=False)(*args, **kwargs)  # type: ignore[no-any-return]


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
