"""Deploys on My work, and the hosts a person may use.

A deploy's row is its ``Deploy``: queued, running, then succeeded or failed with the
sentence its page showed. ``deploy_finished`` also records the outcome in the audit trail,
beside the request (``container.deploy``) the service recorded.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from hosts.models import Deploy, Host
from portal import access, audit, work

log = logging.getLogger(__name__)

DEPLOY_RESULT = "container.deploy_result"
_BUCKETS = {"queued": "running", "running": "running", "success": "done", "error": "failed"}


def deploy_request(found: Deploy) -> work.Request:
    spec = found.spec or {}
    name = spec.get("name") or ""
    failed = found.state == Deploy.State.ERROR
    return work.Request(
        kind="deploy",
        pk=found.pk,
        title=(
            f"pull {spec.get('image', '')}" if spec.get("pull_only") else f"deploy {spec.get('image', '')}"
        )
        + (f" as {name}" if name else ""),
        url=reverse("hosts:host", args=[found.host_id]),
        project=found.host.project.name,
        status=found.state,
        status_label=found.get_state_display(),
        bucket=_BUCKETS.get(found.state, "running"),
        progress=None,
        when=found.created,
        note=found.outcome if failed else f"on {found.host.name}",
    )


def rows(user: Any) -> list[work.Request]:
    deploys = Deploy.objects.filter(actor=user).select_related("host__project")
    if not access.is_admin(user):
        deploys = deploys.filter(host__project__in=access.projects(user, "project.view"))
    return [deploy_request(d) for d in deploys.order_by("-id")[: work.LIMIT]]


def panel(user: Any) -> dict[str, Any]:
    usable = access.projects(user, "host.operate")
    hosts = Host.objects.filter(project__in=usable).select_related("project").order_by("name")
    return {"hosts": hosts[: work.LIMIT]}


def publish_deploy(found: Deploy) -> None:
    """The deploy's row on its requester's My work. Never raises."""
    if found.actor_id:
        work.publish_row(
            found.actor_id,
            lambda: deploy_request(found),
            key="deploy",
            pk=found.pk,
            name=f"deploy {found.pk}",
        )


def deploy_finished(found: Deploy, outcome: str) -> None:
    """Record how a deploy ended (``outcome``: "ok" or the sentence the deploy page showed),
    clear its environment's values, and tell its requester's My work."""
    with transaction.atomic():
        found.environment = ""
        found.state = Deploy.State.SUCCESS if outcome == "ok" else Deploy.State.ERROR
        found.outcome = "" if outcome == "ok" else outcome[:1000]
        found.finished = timezone.now()
        found.save(update_fields=["environment", "state", "outcome", "finished"])
    try:
        audit.record(
            DEPLOY_RESULT,
            obj=found.host,
            project=found.host.project,
            actor=found.actor,
            after={"token": found.token, "outcome": outcome[:1000]},
        )
    except Exception:
        # The deploy is done either way: a record not written is logged, not a failed deploy.
        log.warning("deploy %s: outcome not audited", found.pk, exc_info=True)
    publish_deploy(found)
