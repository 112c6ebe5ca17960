"""Configuration changes on My work: the requester's rows and the approvals queue's news.

A change's row is read back from the database each time it is published (its status and
progress moved); the comment given with an approval or a rejection lives in the audit
trail, and the row shows the latest one.
"""

from __future__ import annotations

import logging
from typing import Any

from django.template.loader import render_to_string
from django.urls import reverse

from hosts.changes import outcome
from hosts.models.changes import Change, Profile
from portal import access, live, work
from portal.models import AuditEntry

log = logging.getLogger(__name__)

# Change states grouped the way the Requests view filters them.
_RUNNING = {"planning", "planned", "awaiting_approval", "approved", "applying"}
_FAILED = {"failed", "partial", "rejected"}


def approvals_topic(project_id: int) -> str:
    return f"project:{project_id}:approvals"


def decisions(change_ids: list[int]) -> dict[int, str]:
    """The comment given with each change's latest approval or rejection (kept in the audit trail)."""
    if not change_ids:
        return {}
    entries = AuditEntry.objects.filter(
        object_type="hosts.change",
        object_id__in=[str(pk) for pk in change_ids],
        action__in=("change.approve", "change.reject"),
    ).order_by("id")
    notes: dict[int, str] = {}
    for entry in entries.values("object_id", "actor_name", "action", "after"):
        after = entry["after"] if isinstance(entry["after"], dict) else {}
        verb = "approved" if entry["action"] == "change.approve" else "rejected"
        comment = str(after.get("comment") or "")
        said = f"{verb} by {entry['actor_name']}"
        notes[int(entry["object_id"])] = f"{said}: {comment}" if comment else said
    return notes


def change_request(change: Change, note: str = "") -> work.Request:
    status = str(change.status)
    bucket = "running" if status in _RUNNING else "failed" if status in _FAILED else "done"
    return work.Request(
        kind="change",
        pk=change.pk,
        title=change.title,
        url=reverse("hosts:change", args=[change.pk]),
        project=change.project.name,
        status=status,
        status_label=outcome.status_label(change),
        bucket=bucket,
        progress=change.progress() if status == "applying" else None,
        when=change.created,
        note=note,
    )


def rows(user: Any) -> list[work.Request]:
    """The changes the user asked for, in projects they can still see."""
    visible = access.projects(user, "project.view")
    changes = list(
        Change.objects.filter(created_by=user, project__in=visible)
        .select_related("project")
        .prefetch_related("runs")[: work.LIMIT]
    )
    notes = decisions([c.pk for c in changes])
    return [change_request(c, notes.get(c.pk, "")) for c in changes]


def panel(user: Any) -> dict[str, Any]:
    """The profiles the user may plan, and the approvals waiting for them."""
    approvable = access.projects(user, "change.approve")
    return {
        "profiles": Profile.objects.filter(project__in=access.projects(user, "change.plan"))
        .select_related("project")
        .order_by("name")[: work.LIMIT],
        "waiting": Change.objects.filter(project__in=approvable, status="awaiting_approval").count(),
        "may_approve": approvable.exists(),
    }


def publish(change: Change, *, approvals: bool = True) -> None:
    """News of a change for its requester's My work and (``approvals``) its project's
    approvals queue, whenever its status or progress moves. Never raises."""
    try:
        _publish(change, approvals=approvals)
    except Exception:
        # News only: the change itself must not fail because a row could not be pushed.
        log.warning("My work: change %s not published", getattr(change, "pk", None), exc_info=True)


def _publish(change: Change, *, approvals: bool) -> None:
    change = Change.objects.select_related("project", "created_by", "approved_by").get(pk=change.pk)
    note = decisions([change.pk]).get(change.pk, "")
    if change.created_by_id:
        html = render_to_string("portal/work/partials/request_row.html", {"r": change_request(change, note)})
        live.publish(work.requests_topic(change.created_by_id), html=html, data={"change": change.pk})
    if approvals and change.status in ("awaiting_approval", "approved", "rejected"):
        html = render_to_string(
            "portal/work/partials/approval.html",
            {"change": change, "runs": list(change.runs.select_related("host")), "note": note},
        )
        live.publish(
            approvals_topic(change.project_id), html=html, data={"change": change.pk, "status": change.status}
        )
