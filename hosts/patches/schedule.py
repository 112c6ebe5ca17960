"""The ``patches`` watcher (portal.watchers).

The periodic refresh: every host of the shard whose patch status was last tried more than
``settings.PATCH_REFRESH_INTERVAL`` seconds ago (or never) is refreshed, in batches that read
each repository once. Being due-based, a restarted watch process does not
read the whole fleet again at once.

Each pass also moves patch changes on (``patch_changes_pass``): starts the scheduled ones
whose maintenance window has opened, deletes the VM snapshots whose success window has
passed, and fails runs whose worker died. Each is a function of ``now`` the tests call."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from hosts.models import Host, PatchChange, PatchChangeStatus, PatchRun, PatchRunState, SnapshotState
from hosts.patches import apply, news, reboot, running, services, snapshots, status, windows
from hosts.patches import tasks as patch_tasks

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
        # Changes first: they are quick, and a refresh of many hosts may take minutes.
        await database_sync_to_async(patch_changes_pass, thread_sensitive=False)(shard)
        try:
            # Not a bare sync_to_async: this closes the thread's connection after each pass.
            stored = await database_sync_to_async(refresh_due, thread_sensitive=False)(shard)
            if stored:
                log.info("patch status: %d host(s) refreshed", stored)
        except Exception:
            log.exception("patch status refresh failed")


# ---------------------------------------------------------------- patch changes (issue 19)

#: A run "applying" whose heartbeat is older than this lost its worker. Longer than the apply
#: engine can go without a step: one tdnf run, a reboot with the wait for the containers, and
#: the snapshot before (a heartbeat is written at each step, never during one).
STUCK_AFTER = timedelta(
    seconds=apply.COMMAND_TIMEOUT
    + max(reboot.REBOOT_TIMEOUT, settings.PATCH_REBOOT_TIMEOUT)
    + apply.CONTAINER_TIMEOUT
    + snapshots.TIMEOUT
)
#: Why the sweep failed a run.
STUCK = "the worker stopped answering while this host was being patched: check its packages, then plan again"


def _owned(shard: Any, pk: int) -> bool:
    return shard is None or bool(shard.owns(pk))


def start_due(now: datetime | None = None, shard: Any = None) -> list[int]:
    """Start the scheduled changes whose time has come: each claimed with one UPDATE on its
    status (scheduled -> applying), so its first batch is queued once whatever the number of
    watchers. One whose window closed meanwhile (the watcher was down) waits for the next."""
    now = now or timezone.now()
    started = []
    due = PatchChange.objects.filter(status=PatchChangeStatus.SCHEDULED, not_before__lte=now)
    for pk, project_id in due.values_list("pk", "project_id"):
        if not _owned(shard, pk):
            continue
        opens = windows.next_opening(project_id, now)
        if opens is not None and opens > now:
            PatchChange.objects.filter(pk=pk, status=PatchChangeStatus.SCHEDULED).update(not_before=opens)
            continue
        with transaction.atomic():
            claimed = PatchChange.objects.filter(
                pk=pk, status=PatchChangeStatus.SCHEDULED, not_before__lte=now
            ).update(status=PatchChangeStatus.APPLYING)
            if not claimed:
                continue
            change = PatchChange.objects.select_for_update().get(pk=pk)
            patch_tasks.queue_next_batch(change)
        news.publish_change(change)
        started.append(pk)
    return started


def remove_expired_snapshots(now: datetime | None = None, shard: Any = None) -> int:
    """Delete the snapshots whose success window has passed; how many were removed. One that
    could not be is tried again next pass; one whose VM is gone or unlinked is marked failed."""
    now = now or timezone.now()
    removed = 0
    due = PatchRun.objects.filter(snapshot_state=SnapshotState.TAKEN, snapshot_remove_after__lte=now)
    for run in due.select_related("host", "change__project").order_by("snapshot_remove_after"):
        if not _owned(shard, run.pk):
            continue
        vm_row = running.vm_of(run)
        if vm_row is None:
            PatchRun.objects.filter(pk=run.pk).update(
                snapshot_state=SnapshotState.FAILED, snapshot_remove_after=None
            )
            log.warning(
                "snapshot %s of host %s: its VM is gone or unlinked", run.snapshot_moref, run.host.name
            )
            continue
        removed += running.remove_snapshot(run, vm_row)
    return removed


def sweep_stuck(now: datetime | None = None, shard: Any = None) -> int:
    """Fail runs left "applying" by a worker that died (see hosts.changes.runs.sweep_interrupted)
    and move their changes on; how many."""
    now = now or timezone.now()
    count = 0
    stale = PatchRun.objects.filter(state=PatchRunState.APPLYING, heartbeat__lt=now - STUCK_AFTER)
    for run in stale.select_related("host", "change__project", "change__applied_by"):
        if _owned(shard, run.pk) and running.finish(run, PatchRunState.FAILED, STUCK):
            patch_tasks.advance(run.change_id)
            count += 1
    return count


def patch_changes_pass(shard: Any) -> None:
    """The watcher's share of patch changes, each part on its own (one failing stops no other)."""
    for part in (start_due, remove_expired_snapshots, sweep_stuck):
        try:
            part(None, shard)
        except Exception:
            log.exception("patch changes: %s failed", part.__name__)
