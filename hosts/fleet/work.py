"""Deploys on My work, and the hosts a person may use.

A deploy keeps no row of its own: its request is the ``container.deploy`` audit entry,
and the ``container.deploy_result`` entry ``deploy_finished`` records (same token) is
how it ended. The deploy task (``hosts.fleet.tasks.deploy_container``) calls
``deploy_started`` and ``deploy_finished``.
"""

from __future__ import annotations

import logging
from typing import Any

from django.urls import reverse

from hosts.models import Host
from portal import access, audit, work
from portal.models import AuditEntry

log = logging.getLogger(__name__)

DEPLOY_RESULT = "container.deploy_result"


def deploy_request(entry: AuditEntry, result: AuditEntry | None = None) -> work.Request:
    after = entry.after if isinstance(entry.after, dict) else {}
    name = after.get("name") or ""
    outcome = (result.after or {}).get("outcome", "") if result is not None else ""
    if result is None:
        status, label, bucket, note = "running", "Running", "running", f"on {entry.object_repr}"
    elif outcome == "ok":
        status, label, bucket, note = "success", "Succeeded", "done", f"on {entry.object_repr}"
    else:
        status, label, bucket, note = "error", "Failed", "failed", str(outcome)
    return work.Request(
        kind="deploy",
        pk=entry.pk,
        title=f"deploy {after.get('image', '')}" + (f" as {name}" if name else ""),
        url=reverse("hosts:host", args=[entry.object_id]) if entry.object_id.isdigit() else "",
        project=entry.project_name,
        status=status,
        status_label=label,
        bucket=bucket,
        progress=None,
        when=entry.at,
        note=note,
    )


def _results(entries: list[AuditEntry]) -> dict[str, AuditEntry]:
    tokens = [e.after.get("token") for e in entries if isinstance(e.after, dict) and e.after.get("token")]
    if not tokens:
        return {}
    results = AuditEntry.objects.filter(action=DEPLOY_RESULT, after__token__in=tokens)
    # Each row matched after__token__in, so its after is a dict with a token.
    return {r.after["token"]: r for r in results if isinstance(r.after, dict)}


def rows(user: Any) -> list[work.Request]:
    deploys = AuditEntry.objects.filter(actor=user, action="container.deploy")
    if not access.is_admin(user):
        deploys = deploys.filter(project__in=access.projects(user, "project.view"))
    entries = list(deploys.order_by("-id")[: work.LIMIT])
    results = _results(entries)
    return [
        deploy_request(e, results.get(e.after.get("token", "")) if isinstance(e.after, dict) else None)
        for e in entries
    ]


def panel(user: Any) -> dict[str, Any]:
    usable = access.projects(user, "host.operate")
    hosts = Host.objects.filter(project__in=usable).select_related("project").order_by("name")
    return {"hosts": hosts[: work.LIMIT]}


def _entry(host: Host, token: str) -> AuditEntry | None:
    return (
        AuditEntry.objects.filter(
            action="container.deploy", object_type="hosts.host", object_id=str(host.pk), after__token=token
        )
        .select_related("actor")
        .order_by("-id")
        .first()
    )


def _publish(request: AuditEntry, result: AuditEntry | None) -> None:
    if request.actor_id:
        work.publish_row(
            request.actor_id,
            lambda: deploy_request(request, result),
            key="deploy",
            pk=request.pk,
            name=f"deploy {request.pk}",
        )


def deploy_started(host: Host, token: str) -> None:
    """The deploy's task has begun: its row appears, running, on the requester's My work."""
    try:
        request = _entry(host, token)
        if request is not None:
            _publish(request, None)
    except Exception:
        log.warning("My work: start of deploy %s on %s not published", token, host, exc_info=True)


def deploy_finished(host: Host, token: str, outcome: str) -> None:
    """Record how a deploy ended, for its requester's My work.

    ``outcome`` is "ok" or the sentence the deploy page showed.
    """
    try:
        _finished(host, token, outcome)
    except Exception:
        # The deploy itself is done either way: a missing row is news lost, not a failed deploy.
        log.warning("My work: outcome of deploy %s on %s not recorded", token, host, exc_info=True)


def _finished(host: Host, token: str, outcome: str) -> None:
    request = _entry(host, token)
    if request is None:
        return
    result = audit.record(
        DEPLOY_RESULT,
        obj=host,
        project=host.project,
        actor=request.actor,
        actor_name=request.actor_name,
        after={"token": token, "outcome": outcome[:1000]},
    )
    _publish(request, result)
