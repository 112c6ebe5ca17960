"""A project's application quota (``AppQuota``), the one check every way of adding to what a
project runs calls: a deploy, a scale up, an update whose services reserve more. What is used
is what the placements of its applications that still hold containers reserve; the check runs
in the caller's transaction with the project's row locked, so two deploys at once cannot both
take the last of it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, Sum

from hosts.applications.placement import Need
from hosts.models import Application, ApplicationPlacement, AppQuota
from portal.models import Project
from portal.refused import Refused

MIB = 1024 * 1024
#: States whose containers are gone: their placements reserve nothing.
GONE = (Application.State.REMOVED, Application.State.ROLLED_BACK)


@dataclass(frozen=True)
class Usage:
    containers: int = 0
    memory: int = 0  # bytes
    cpus: float = 0.0


def usage(project_id: int) -> Usage:
    """What the project's applications reserve now, in one query."""
    row = (
        ApplicationPlacement.objects.filter(application__project_id=project_id)
        .exclude(application__state__in=GONE)
        .aggregate(containers=Count("pk"), memory=Sum("memory"), cpus=Sum("cpus"))
    )
    return Usage(int(row["containers"]), int(row["memory"] or 0), float(row["cpus"] or 0))


def check(project_id: int, adding: Iterable[tuple[Need, int]], *, freeing: Usage = Usage()) -> None:
    """Refuse, naming each limit, what it would come to and the quota, when adding ``adding``
    (each service's need and how many replicas of it) and giving back ``freeing`` does not fit
    the project's quota; refuse a service that declares no memory (or CPUs) where the quota
    limits memory (or CPUs). Call it inside a transaction: the project's row stays locked
    until it ends, so the next check counts what this one let in."""
    adding = [(need, count) for need, count in adding if count > 0]
    Project.objects.select_for_update().filter(pk=project_id).exists()
    quota = AppQuota.objects.select_related("project").filter(project_id=project_id).first()
    if quota is None:
        return
    for need, _ in adding:
        for kind, limit, declared in (
            ("memory", quota.max_memory_mb, need.memory),
            ("cpus", quota.max_cpus, need.cpus),
        ):
            if limit is not None and not declared:
                raise Refused(
                    f"{quota.project}'s application quota counts {kind}: {need.service} must declare its "
                    f"{kind} (deploy.resources.reservations or limits) to be counted.",
                    status=409,
                )
    used = usage(project_id)
    # Each kind as it would be once done, and how much of it this adds: a change that adds none
    # of a kind is let through even where the project is over that limit (an Admin lowered it).
    totals = (
        (used.containers, freeing.containers, sum(count for _, count in adding)),
        (used.memory, freeing.memory, sum(need.memory * count for need, count in adding)),
        (used.cpus, freeing.cpus, sum(need.cpus * count for need, count in adding)),
    )
    (containers, more_containers), (memory, more_memory), (cpus, more_cpus) = (
        (now - given_back + added, added - given_back) for now, given_back, added in totals
    )
    cpus = round(cpus, 2)
    problems = []
    if quota.max_containers is not None and more_containers > 0 and containers > quota.max_containers:
        problems.append(f"{containers} containers, and the quota is {quota.max_containers}")
    if quota.max_memory_mb is not None and more_memory > 0 and memory > quota.max_memory_mb * MIB:
        problems.append(f"{memory / MIB:,.0f} MiB of memory, and the quota is {quota.max_memory_mb:,} MiB")
    if quota.max_cpus is not None and more_cpus > 0 and Decimal(str(cpus)) > quota.max_cpus:
        problems.append(f"{cpus:g} CPUs, and the quota is {quota.max_cpus.normalize():f}")
    if problems:
        raise Refused(
            f"Over {quota.project}'s application quota: its applications would reserve "
            f"{'; '.join(problems)}. Remove or scale down one of them, or ask an Admin for more.",
            status=409,
        )


def describe(project_id: int) -> str:
    """The project's quota and what is in use, in words for the deploy page ("" without one)."""
    quota = AppQuota.objects.filter(project_id=project_id).first()
    if quota is None:
        return ""
    used = usage(project_id)
    parts = [
        f"{used.containers} of {quota.max_containers} containers" if quota.max_containers is not None else "",
        f"{used.memory / MIB:,.0f} of {quota.max_memory_mb:,} MiB" if quota.max_memory_mb is not None else "",
        f"{used.cpus:g} of {quota.max_cpus.normalize():f} CPUs" if quota.max_cpus is not None else "",
    ]
    return f"Application quota: {', '.join(p for p in parts if p) or 'no limits'} in use."
