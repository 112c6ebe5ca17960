"""The portal's ASGI app with the engines watcher on daphne's own loop, as `make run` has it.

For browser tests on the embedded default: the in-memory channel layer only reaches the
browsers of the process that publishes, so the watcher must run inside the daphne under test.
"""

from __future__ import annotations

import asyncio
from typing import Any

from portal.asgi import application as portal_application

_tasks: set[asyncio.Task[None]] = set()


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if not _tasks:
        from portal.watchers import Shard, run_all

        _tasks.add(asyncio.ensure_future(run_all(Shard(), ["engines"])))
    await portal_application(scope, receive, send)
