"""Hosts by status per project, kept in ProjectHostCounts so that reading them costs one row
per project (the fleet page, the dashboard's Hosts card, a live update), whatever the fleet's size.

Kept by recounting the project, never by adding and subtracting, so a count cannot drift:

- a host saved with a counted field changed (its status, containers running, project), created
  or deleted recounts its project(s) in the same transaction (signals, so every writer is covered:
  the watchers through hosts.fleet.status, forms, the API, the admin);
- ``repair()`` recounts every project; the engines watcher runs it every ``REPAIR_EVERY`` seconds,
  which mends what sends no signal (``bulk_create``, ``QuerySet.update``, raw SQL);
- a project never counted (no row yet) is counted when first read.
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Count, Q, Sum
from django.db.models.signals import post_delete, post_save

from hosts.models import Host, HostStatus, ProjectHostCounts
from hosts.models.counts import COUNTED
from portal.models import Project

REPAIR_EVERY = 300.0


def _count(hosts: Any) -> dict[int, dict[str, int]]:
    """The counters of a queryset of hosts, grouped by project: {project_id: {name: n}} (one query)."""
    rows = hosts.values("project_id").annotate(
        total=Count("pk"),
        running=Sum("containers_running"),
        **{s.value: Count("pk", filter=Q(status=s.value)) for s in HostStatus},
    )
    return {row["project_id"]: {name: int(row[name] or 0) for name in COUNTED} for row in rows}


def recount(project_id: int) -> dict[str, int]:
    """Count the project's hosts afresh and store it; returns the counters."""
    try:
        with transaction.atomic():
            # Take the project's row first (an upsert locks it), then count: a concurrent recount
            # waits here and counts after this one commits, so the last one written saw every host.
            ProjectHostCounts.objects.bulk_create(
                [ProjectHostCounts(project_id=project_id)],
                update_conflicts=True,
                unique_fields=["project"],
                update_fields=["total"],
            )
            counted = _count(Host.objects.filter(project_id=project_id)).get(project_id, {})
            counts = {name: counted.get(name, 0) for name in COUNTED}
            ProjectHostCounts.objects.filter(project_id=project_id).update(**counts)
    except IntegrityError:
        return dict.fromkeys(COUNTED, 0)  # the project is gone: nothing to count
    return counts


def read(project_ids: list[int]) -> dict[int, dict[str, int]]:
    """The counters of these projects: one query (two more, once, for projects never counted)."""
    found = {
        row["project_id"]: {name: row[name] for name in COUNTED}
        for row in ProjectHostCounts.objects.filter(project_id__in=project_ids).values("project_id", *COUNTED)
    }
    missing = [pk for pk in project_ids if pk not in found]
    if missing:
        counted = _count(Host.objects.filter(project_id__in=missing))
        fresh = {pk: {name: counted.get(pk, {}).get(name, 0) for name in COUNTED} for pk in missing}
        # Only where no row is yet: a recount that made one meanwhile counted under its lock.
        ProjectHostCounts.objects.bulk_create(
            [ProjectHostCounts(project_id=pk, **counts) for pk, counts in fresh.items()],
            ignore_conflicts=True,
        )
        found.update(fresh)
    return found


def repair() -> int:
    """Recount every project from its hosts; returns how many projects' counters were wrong."""
    fresh = _count(Host.objects.all())
    stored = {
        row["project_id"]: {name: row[name] for name in COUNTED}
        for row in ProjectHostCounts.objects.values("project_id", *COUNTED)
    }
    projects = set(Project.objects.values_list("pk", flat=True))
    zero = dict.fromkeys(COUNTED, 0)
    wrong = [pk for pk in projects | stored.keys() if fresh.get(pk, zero) != stored.get(pk)]
    for pk in wrong:
        recount(pk)  # under the row's lock, so a change made meanwhile is not overwritten
    return len(wrong)


def _moved(host: Host, update_fields: Any) -> set[int]:
    """The projects whose counters this save may have changed."""
    loaded = getattr(host, "counted_as_loaded", None)
    now = {f: host.__dict__.get(f) for f in Host.COUNTED_FIELDS}
    projects: set[int] = set()
    if loaded is None:  # created, or saved without being loaded: count it
        projects.add(host.project_id)
    else:
        fields: tuple[str, ...] = Host.COUNTED_FIELDS
        if update_fields is not None:
            named = set(update_fields) | {f"{name}_id" for name in update_fields}  # "project" is project_id
            fields = tuple(f for f in fields if f in named)
        if any(f not in loaded or loaded[f] != now[f] for f in fields):
            projects |= {host.project_id, loaded.get("project_id") or host.project_id}
    host.counted_as_loaded = {f: v for f, v in now.items() if f in host.__dict__}
    return projects


def _saved(sender: Any, instance: Host, update_fields: Any = None, **kwargs: Any) -> None:
    for project_id in _moved(instance, update_fields):
        recount(project_id)


def _deleted(sender: Any, instance: Host, **kwargs: Any) -> None:
    recount(instance.project_id)


def connect() -> None:
    post_save.connect(_saved, sender=Host, dispatch_uid="hosts.fleet.counters.saved")
    post_delete.connect(_deleted, sender=Host, dispatch_uid="hosts.fleet.counters.deleted")
