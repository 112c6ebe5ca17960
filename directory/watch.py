"""Queues the directory sync every DIRECTORY_SYNC_INTERVAL seconds (portal.watchers: run
by `manage.py watch`, or inside the portal process on the embedded default). Shard 1
alone queues it, so several watch processes do not sync several times."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from django.conf import settings

from .tasks import sync_directory

log = logging.getLogger(__name__)


async def watch_directory(shard: Any) -> None:
    if shard.index != 1:
        return
    while True:
        await asyncio.sleep(settings.DIRECTORY_SYNC_INTERVAL)  # a schedule, not a wait on a condition
        try:
            await asyncio.to_thread(sync_directory.delay)
        except Exception:
            log.exception("directory sync could not be queued")
