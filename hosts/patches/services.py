"""Refresh on demand: who may ask (portal.access, through the hosts' visibility rules), which
hosts a fleet refresh takes, and queueing the work (portal.queueing)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from hosts.models import Host
from hosts.patches import tasks
from portal import access, audit
from portal.queueing import enqueue, enqueue_each
from portal.refused import Refused

#: Hosts per task of a fleet refresh: each task reads a repository once for all of them.
BATCH = 50


def readable(hosts: QuerySet[Host]) -> QuerySet[Host]:
    """The hosts a refresh can read: enabled, with an SSH address and a pinned host key."""
    return hosts.filter(enabled=True).exclude(address="").exclude(ssh_host_key="")


def request_refresh(user: Any, host_id: int | str) -> Host:
    """Refresh one host's patch status now (host.operate in its project). A host the user
    cannot see is a 404, one they see but may not operate a 403 (Host.objects.get_or_404)."""
    host = Host.objects.select_related("project").get_or_404(user, host_id, "host.operate")
    if not host.enabled:
        raise Refused(f"Host {host.name} is disabled: the portal does not connect to it.")
    audit.record("host.patches_refresh", obj=host, project=host.project)
    enqueue(tasks.refresh_host, host.pk)
    return host


def request_fleet_refresh(user: Any) -> int:
    """Refresh every readable host of the projects whose hosts the user manages (a fleet-wide
    read is heavier than one host's, which host.operate allows); how many were queued."""
    hosts = readable(Host.objects.filter(project__in=access.projects(user, "host.manage")))
    ids = list(hosts.order_by("pk").values_list("pk", flat=True))
    if not ids:
        raise Refused("No host you manage can be read over SSH (enabled, with an address and a pinned key).")
    audit.record("host.patches_refresh_fleet", after={"hosts": len(ids)})
    enqueue_each(tasks.refresh_hosts, [(ids[i : i + BATCH],) for i in range(0, len(ids), BATCH)])
    return len(ids)
