"""Celery tasks for patch status and patch changes: thin, the flow is in hosts.patches.status
and hosts.patches.running. A patch change's batches are queued here too (``queue_next_batch``,
``advance``): the task that ends a host queues the next batch, so the two live together
(hosts.patches.changes, the services, re-exports ``advance``)."""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import transaction
from django.db.models import Max, Min
from django.utils import timezone

from hosts.models import Host, PatchChange, PatchChangeStatus, PatchRun, PatchRunState
from hosts.patches import news, running, status
from portal import audit
from portal.queueing import enqueue_each

log = logging.getLogger(__name__)

#: A run in one of these has ended (its batch may move on).
ENDED = (PatchRunState.APPLIED, PatchRunState.ROLLED_BACK, PatchRunState.FAILED)
BAD = (PatchRunState.ROLLED_BACK, PatchRunState.FAILED)


@shared_task(name="hosts.refresh_patch_status", ignore_result=True)
def refresh_host(host_id: int) -> str:
    """Refresh one host's patch status; the error ("" when stored), or "gone"."""
    host = Host.objects.select_related("project").filter(pk=host_id).first()
    if host is None:
        return "gone"
    (done,) = status.refresh_hosts([host])
    return done.error


@shared_task(name="hosts.refresh_patch_statuses", ignore_result=True)
def refresh_hosts(host_ids: list[int]) -> int:
    """Refresh several hosts at once (each repository read once for all); how many were stored."""
    hosts = Host.objects.select_related("project").filter(pk__in=host_ids).order_by("pk")
    return sum(1 for done in status.refresh_hosts(hosts) if not done.error)


@shared_task(name="hosts.apply_patch_run", ignore_result=True, acks_late=True)
def apply_patch_run(run_id: int) -> str:
    """One host's part of a patch change, then the change moves on. Safe to deliver twice:
    a run claimed already is not run again (running.claim)."""
    run = running.run_host(run_id)
    change_id = PatchRun.objects.filter(pk=run_id).values_list("change_id", flat=True).first()
    if change_id is not None:
        advance(change_id)
    return run.state if run is not None else "skipped"


def not_queued(run_id: int, message: str) -> None:
    """A run whose task the broker did not take: failed before anything ran on its host."""
    PatchRun.objects.filter(pk=run_id, state=PatchRunState.QUEUED).update(
        state=PatchRunState.FAILED, reason=message, step="failed", finished=timezone.now()
    )


def queue_next_batch(change: PatchChange) -> list[int]:
    """Queue the lowest batch still waiting, one task per host, once the caller's transaction
    commits (call it inside one, the change locked). The run ids queued ([] when none wait)."""
    waiting = PatchRun.objects.filter(change=change, state__in=[PatchRunState.WAITING, PatchRunState.PLANNED])
    batch = waiting.aggregate(first=Min("batch"))["first"]
    if batch is None:
        return []
    ids = list(waiting.filter(batch=batch).order_by("host__name").values_list("pk", flat=True))
    PatchRun.objects.filter(pk__in=ids).update(state=PatchRunState.QUEUED, step="queued", progress=0)
    enqueue_each(
        apply_patch_run,
        [(run_id,) for run_id in ids],
        unqueued=lambda args, message: not_queued(args[0], message),
    )
    return ids


def final_status(states: list[str]) -> str:
    """The status of a change whose every batch ran, from its runs' states."""
    tried = [s for s in states if s not in (PatchRunState.NOTHING, PatchRunState.SKIPPED)]
    applied = sum(1 for s in tried if s == PatchRunState.APPLIED)
    if applied == len(tried):
        return PatchChangeStatus.APPLIED
    return PatchChangeStatus.PARTIAL if applied else PatchChangeStatus.FAILED


def advance(change_id: int) -> str:
    """A host of the change ended: once every run of its batch has, pause the change (a failure
    in that batch, and it pauses on failure), queue the next batch, or end the change. Under
    the change's row lock: two hosts ending together cannot both queue the next batch."""
    paused = ended = False
    with transaction.atomic():
        change = PatchChange.objects.select_for_update().select_related("project").get(pk=change_id)
        if change.status != PatchChangeStatus.APPLYING:
            return change.status
        runs = PatchRun.objects.filter(change=change)
        if runs.filter(state__in=[PatchRunState.QUEUED, PatchRunState.APPLYING]).exists():
            return change.status
        current = runs.filter(state__in=ENDED).aggregate(last=Max("batch"))["last"]
        failed = current is not None and runs.filter(batch=current, state__in=BAD).exists()
        if runs.filter(state=PatchRunState.WAITING).exists():
            if failed and change.pause_on_failure:
                change.status = PatchChangeStatus.PAUSED
                change.save(update_fields=["status"])
                paused = True
            else:
                queue_next_batch(change)
        else:
            change.status = final_status(list(runs.values_list("state", flat=True)))
            change.finished_at = timezone.now()
            change.save(update_fields=["status", "finished_at"])
            ended = True
    if paused:
        audit.record(
            "patch.paused",
            obj=change,
            project=change.project,
            actor_name="system",
            after={"batch": current, "why": "a host of this batch failed or was rolled back"},
        )
    if paused or ended:
        news.publish_change(change)
    return change.status
