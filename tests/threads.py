"""Database work from a test's event loop, in a thread that gives its connection back."""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar

from channels.db import database_sync_to_async

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
