"""A project's placement pool as the planner sees it: its enabled hosts, what their engines
last reported (memory, CPUs, containers, status, from the watchers' rows), less what the
portal's applications already reserve there. Read from the database in three queries, so a
plan costs no engine round trip."""

from __future__ import annotations

from collections import defaultdict

from django.db.models import Sum

from hosts.applications.placement import Candidate
from hosts.models import Application, ApplicationPlacement, Host, HostStatus


def candidates(project_id: int) -> list[Candidate]:
    hosts = list(Host.objects.filter(project_id=project_id, enabled=True).prefetch_related("tags"))
    reserved: dict[int, tuple[int, float]] = defaultdict(lambda: (0, 0.0))
    taken = (
        ApplicationPlacement.objects.filter(host__in=hosts)
        .exclude(application__state__in=[Application.State.REMOVED, Application.State.ROLLED_BACK])
        .values("host")
        .annotate(memory=Sum("memory"), cpus=Sum("cpus"))
    )
    for row in taken:
        reserved[row["host"]] = (int(row["memory"] or 0), float(row["cpus"] or 0))
    pool = []
    for host in hosts:
        memory, cpus = reserved[host.pk]
        pool.append(
            Candidate(
                id=host.pk,
                name=host.name,
                on=host.status == HostStatus.ON,
                tags=frozenset(t.name for t in host.tags.all()),
                memory_free=max(0, (host.memory or 0) - memory),
                cpus_free=max(0.0, float(host.cpus or 0) - cpus),
                containers=host.containers_total,
            )
        )
    return pool
