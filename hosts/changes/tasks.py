"""Celery tasks for configuration changes: thin, the flow is in hosts.changes (planning, apply, drift)."""

from __future__ import annotations

import asyncio

from celery import shared_task

from hosts.changes import apply, drift, planning, runs
from hosts.models import Host
from hosts.models.changes import Change


@shared_task(name="hosts.plan_change", ignore_result=True)
def plan_change(change_id: int, host_ids: list[int]) -> None:
    """Read and render every chosen host of a change (no writes)."""
    change = Change.objects.select_related("project", "created_by", "reverts").get(pk=change_id)
    hosts = Host.objects.filter(project=change.project, pk__in=host_ids).order_by("name")
    planning.plan(change, hosts)


@shared_task(name="hosts.apply_change_host", ignore_result=True, acks_late=True)
def apply_host(run_id: int) -> str:
    """One host's part of a change. Safe to run twice: a run another task holds,
    or one already finished, is skipped."""
    return asyncio.run(apply.apply_run(run_id))


@shared_task(name="hosts.check_drift", ignore_result=True)
def check_drift(host_ids: list[int] | None = None) -> int:
    hosts = list(Host.objects.filter(pk__in=host_ids)) if host_ids is not None else None
    runs.sweep_interrupted()
    return len(drift.check_drift(hosts))
