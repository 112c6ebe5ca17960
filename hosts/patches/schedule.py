"""The periodic refresh (a watcher, portal.watchers): every host of the shard whose patch status
was last tried more than ``settings.PATCH_REFRESH_INTERVAL`` seconds ago (or never) is refreshed,
in batches that read each repository once. Being due-based, a restarted watch process does not
read the whole fleet again at once."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from hosts.models import Host
from hosts.patches import services, status

log = logging.getLogger(__name__)

#: The longest the watcher sleeps between looks for due hosts.
WAKE_EVERY = 300.0


def interval() -> float:
    return float(settings.PATCH_REFRESH_INTERVAL)


def due(shard: Any) -> list[int]:
    """This shard's readable hosts whose status is older than the interval, oldest first."""
    before = timezone.now() - timedelta(seconds=interval())
    hosts = services.readable(Host.objects.all()).filter(
        Q(patch_status__isnull=True)
        | Q(patch_status__tried_at__isnull=True)
        | Q(patch_status__tried_at__lt=before)
    )
    ordered = hosts.order_by(F("patch_status__tried_at").asc(nulls_first=True), "pk").values_list(
        "pk", flat=True
    )
    return [pk for pk in ordered if shard.owns(pk)]


def refresh_due(shard: Any) -> int:
    """One pass: refresh the due hosts, a batch at a time; how many were stored."""
    stored = 0
    ids = due(shard)
    for start in range(0, len(ids), services.BATCH):
        batch = Host.objects.select_related("project").filter(pk__in=ids[start : start + services.BATCH])
        stored += sum(1 for done in status.refresh_hosts(batch.order_by("pk")) if not done.error)
    return stored


async def watch_patches(shard: Any) -> None:
    while True:
        # First a wait: a watch process (re)started does not read every due host at once.
        await asyncio.sleep(min(interval(), WAKE_EVERY))  # a schedule, not a wait on a condition
        try:
            # Not a bare sync_to_async: this closes the thread's connection after each pass.
            stored = await database_sync_to_async(refresh_due, thread_sensitive=False)(shard)
            if stored:
                log.info("patch status: %d host(s) refreshed", stored)
        except Exception:
            log.exception("patch status refresh failed")
