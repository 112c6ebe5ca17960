"""A host's status with Admiral's meaning, and the one place that publishes a host's change.

UNKNOWN until first seen; a failed check makes an ON host SUSPECT (shown as
degraded); ``OFF_AFTER`` failures in a row make it OFF and write an event;
a success makes it ON again (with an event when it was OFF). DISABLED hosts are
not checked. Every change is saved first (the database is the truth), then
published: the host's row and its project's counters, to ``project:ID:hosts``
and, for Admins, ``hosts:all``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from hosts.fleet import counters, rows
from hosts.fleet.engine import Facts
from hosts.models import ENGINE_FACTS, Host, HostStatus
from hosts.models.counts import COUNTED
from portal import access, events, live
from portal.models import Event

OFF_AFTER = 3
#: How stale an unchanged host's ``last_seen`` may get (the resolution of "last seen").
LAST_SEEN_EVERY = timedelta(seconds=60)
ALL_HOSTS_TOPIC = "hosts:all"


def project_topic(project_id: int) -> str:
    return f"project:{project_id}:hosts"


def host_topic(host: Host) -> str:
    """The host page's own topic: its containers and engine events."""
    return f"project:{host.project_id}:host:{host.pk}"


def apply_facts(host: Host, facts: Facts) -> list[str]:
    host.os_name = facts.os_name[:100]
    host.os_version = facts.os_version[:50]
    host.kernel = facts.kernel[:100]
    host.engine_version = facts.engine_version[:50]
    host.cpus = facts.cpus
    host.memory = facts.memory
    host.containers_running = facts.containers_running
    host.containers_total = facts.containers_total
    return list(ENGINE_FACTS)


def record_success(host: Host, facts: Facts | None = None) -> bool:
    """A check answered. Returns whether anything shown changed (and was published).

    A host whose row would not change is written only when its ``last_seen`` is older than
    ``LAST_SEEN_EVERY``: a check every 15 s on 10,000 hosts would otherwise rewrite 667 rows
    a second to say nothing new."""
    before, written = _shown(host), _written(host)
    was = host.status
    host.status = HostStatus.ON
    host.failures = 0
    host.last_error = ""
    fields = ["status", "failures", "last_seen", "last_error", "updated"]
    if facts is not None:
        fields += apply_facts(host, facts)
    now = timezone.now()
    if _written(host) == written and host.last_seen is not None and now - host.last_seen < LAST_SEEN_EVERY:
        return False
    host.last_seen = now
    _save(host, was, fields)
    changed = _shown(host) != before
    if changed:
        publish(host)
    return changed


def record_failure(host: Host, error: str) -> bool:
    before = _shown(host)
    was = host.status
    host.failures += 1
    host.last_error = error[:1000]
    host.status = HostStatus.OFF if host.failures >= OFF_AFTER else HostStatus.SUSPECT
    if was == HostStatus.OFF:
        host.status = HostStatus.OFF  # stays OFF until a check succeeds
    _save(host, was, ["status", "failures", "last_error", "updated"], error)
    changed = _shown(host) != before
    if changed:
        publish(host)
    return changed


def record_containers(host: Host, running: int, total: int) -> bool:
    """The event stream saw a container change: update the counts, publish if they moved."""
    if (host.containers_running, host.containers_total) == (running, total) and host.status == HostStatus.ON:
        return False
    host.containers_running, host.containers_total = running, total
    was = host.status
    host.status, host.failures, host.last_seen = HostStatus.ON, 0, timezone.now()
    _save(host, was, ["containers_running", "containers_total", "status", "failures", "last_seen"])
    publish(host)
    return True


def _save(host: Host, was: str, fields: list[str], error: str = "") -> None:
    """Write the host and, when it went OFF or came back, its event, in one transaction: whoever
    reads the new status reads its event too, whichever path (check or engine event) saw it."""
    with transaction.atomic():
        host.save(update_fields=fields)
        if host.status == HostStatus.ON and was == HostStatus.OFF:
            events.notify(f"Host {host.name} is back ON.", obj=host, project=host.project_id, kind="host.on")
        elif host.status == HostStatus.OFF and was != HostStatus.OFF:
            events.notify(
                f"Host {host.name} is OFF: {OFF_AFTER} checks failed in a row ({error[:200]}).",
                severity=Event.Severity.ERROR,
                obj=host,
                project=host.project_id,
                kind="host.off",
            )


def _written(host: Host) -> tuple[Any, ...]:
    """What a successful check writes, but for when it was seen."""
    return (host.status, host.failures, host.last_error, *(getattr(host, name) for name in ENGINE_FACTS))


def _shown(host: Host) -> tuple[Any, ...]:
    return (
        host.status,
        host.failures,
        host.engine_version,
        host.os_version,
        host.cpus,
        host.memory,
        host.containers_running,
        host.containers_total,
    )


# -- counters and publishing ------------------------------------------------------------------------


def publish(host: Host) -> None:
    """Send the host's row and its project's counters to every page showing them."""
    rows.load([host])
    row = render_to_string("hosts/fleet/host_rows.html", {"hosts": [host], "live": True})
    project_counts = render_to_string(
        "hosts/fleet/project_counts.html",
        {"project_id": host.project_id, "c": counters.read([host.project_id])[host.project_id]},
    )
    summary = render_to_string("hosts/fleet/host_summary.html", {"host": host})
    data = {
        "host": host.pk,
        "status": host.status,
        "running": host.containers_running,
        "total": host.containers_total,
    }
    html = row + project_counts
    live.publish(project_topic(host.project_id), html=html, data=data)
    live.publish(ALL_HOSTS_TOPIC, html=html, data=data)
    live.publish(host_topic(host), html=summary, data=data)


# -- the counters: the fleet page's and the portal dashboard's card ----------------------------------


def live_topics(user: Any, project_ids: list[int]) -> list[str]:
    """Admins follow the whole fleet on one topic; members each of their projects."""
    if access.is_admin(user):
        return [ALL_HOSTS_TOPIC]
    return [project_topic(pk) for pk in project_ids]


def fleet_summary(user: Any, project_ids: list[int] | None = None) -> dict[str, Any]:
    """Hosts by status and containers running, per project the user sees and in total (one query:
    hosts.fleet.counters), with the topics that keep them live: the fleet page's counters and the
    portal dashboard's card."""
    if project_ids is None:
        project_ids = list(access.projects(user, "host.view").values_list("pk", flat=True))
    per_project = counters.read(project_ids)
    project_counts: list[dict[str, Any]] = [{"project_id": pk, "c": per_project[pk]} for pk in project_ids]
    totals = {name: sum(c["c"][name] for c in project_counts) for name in COUNTED}
    return {
        "totals": totals,
        "project_counts": project_counts,
        "live_topics": live_topics(user, project_ids),
        "projects": len(project_ids),
    }
