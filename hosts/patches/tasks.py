"""Celery tasks for patch status: thin, the flow is in hosts.patches.status."""

from __future__ import annotations

from celery import shared_task

from hosts.models import Host
from hosts.patches import status


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
