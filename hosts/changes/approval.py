"""Deciding on a planned change: approve, reject, and start applying it (one task per host)."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from hosts.changes import outcome
from hosts.changes.desired import is_rotation, refuse_stored
from hosts.changes.errors import ChangeError
from hosts.changes.news import publish_change
from hosts.changes.planning import can, diffs
from hosts.changes.runs import RUNNABLE, not_queued, sweep_interrupted
from hosts.changes.tasks import apply_host
from hosts.models.changes import (
    Change,
    ChangeStatus,
    RunState,
)
from portal import audit
from portal.queueing import enqueue_each


def approve(change: Change, user: Any, comment: str = "") -> None:
    with transaction.atomic():
        change = Change.objects.select_for_update().get(pk=change.pk)
        if change.status != ChangeStatus.AWAITING_APPROVAL:
            raise ChangeError(f"this change is {change.get_status_display().lower()}, not awaiting approval")
        change.status = ChangeStatus.APPROVED
        change.approved_by = user
        change.approved_at = timezone.now()
        change.save(update_fields=["status", "approved_by", "approved_at"])
    after: dict[str, Any] = {"hosts": diffs(change)}
    if comment:
        after["comment"] = comment
    audit.record("change.approve", obj=change, project=change.project, actor=user, after=after)
    publish_change(change)


def reject(change: Change, user: Any, comment: str = "") -> None:
    with transaction.atomic():
        change = Change.objects.select_for_update().get(pk=change.pk)
        if change.status not in (ChangeStatus.AWAITING_APPROVAL, ChangeStatus.PLANNED):
            raise ChangeError("only a plan that has not been applied can be rejected")
        change.status = ChangeStatus.REJECTED
        change.save(update_fields=["status"])
    # The comment lives in the trail: My work reads the decision back from there.
    after = {"comment": comment} if comment else None
    audit.record("change.reject", obj=change, project=change.project, actor=user, after=after)
    publish_change(change)


def may_apply(change: Change, user: Any) -> bool:
    if change.status == ChangeStatus.APPROVED:
        return can(user, "change.approve", change) or (
            change.created_by_id == getattr(user, "pk", None) and can(user, "change.plan", change)
        )
    if change.status == ChangeStatus.PLANNED:
        return can(user, "change.approve", change)
    if change.status in (ChangeStatus.PARTIAL, ChangeStatus.FAILED, ChangeStatus.APPLYING):
        # Applying again (interrupted or failed hosts) needs the same right as the first time.
        return can(user, "change.approve", change) or (
            change.approved_by_id is not None and change.created_by_id == getattr(user, "pk", None)
        )
    return False


def start_apply(change: Change, user: Any) -> list[int]:
    """Queue one task per host still to do; returns the run ids queued."""
    with transaction.atomic():
        change = Change.objects.select_for_update().get(pk=change.pk)
        nothing = outcome.nothing_to_apply(change.runs.all())
        if nothing:
            raise ChangeError(outcome.why_nothing(nothing))
        if not may_apply(change, user):
            raise ChangeError("this change cannot be applied now, or not by you")
        if not change.reverts_id and not is_rotation(change):
            # Planned before a rule existed: what it would write is refused now.
            refuse_stored(change.settings, f"{change}")
        sweep_interrupted(change=change)
        runs = [
            run for run in change.runs.select_for_update().filter(state__in=RUNNABLE) if outcome.has_plan(run)
        ]
        if not runs:
            raise ChangeError("no host of this change has anything left to apply")
        for run in runs:
            run.state, run.step, run.progress, run.reason = RunState.QUEUED, "queued", 0, run.reason
            run.save(update_fields=["state", "step", "progress", "reason"])
        change.status = ChangeStatus.APPLYING
        change.applied_by = user
        change.save(update_fields=["status", "applied_by"])
    audit.record(
        "change.apply", obj=change, project=change.project, actor=user, after={"hosts": diffs(change)}
    )
    publish_change(change)
    ids = [run.pk for run in runs]
    enqueue_each(
        apply_host, [(run_id,) for run_id in ids], unqueued=lambda args, message: not_queued(args[0], message)
    )
    return ids
