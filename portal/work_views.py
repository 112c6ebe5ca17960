"""My work (every user) and the approvals queue (Project admins).

My work gathers what a person may use and what they asked for: configuration
changes, VM power and snapshot actions, deploys, provisioning requests. Like
Admiral's Requests view it shows All / Running / Failed, and rows update live on
the person's own topic ``requests:user:ID`` (see ``portal.access.can_subscribe``):
the places where those requests change state call ``publish_change`` (hosts.changes.flow),
``publish_vm_task`` (hosts.vsphere.tasks), ``deploy_started`` / ``deploy_finished``
(hosts.fleet.tasks), ``publish_provision`` (hosts.provision.flow.publish_vm, whenever one of
the request's VMs changes state). A deploy has no row of its own: its request is the
``container.deploy`` audit entry, its outcome a ``container.deploy_result`` one; a
provisioning request has no state of its own: its status is its VMs'
(``hosts.provision.flow.summary``).
hosts imports portal, so hosts is imported inside the functions here.

The approvals queue lists the plans waiting for the signed-in Project admin,
with their diffs; a plan arrives live on ``project:ID:approvals``. Deciding
goes through ``hosts.changes.flow.approve`` / ``reject``: the one flow, audited there.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_POST

from . import access, live
from .models import AuditEntry, Membership

log = logging.getLogger(__name__)

VIEWS = ("all", "running", "failed")
COMMENT_MAX = 1000
DEPLOY_RESULT = "container.deploy_result"
#: Rows of each kind on My work: the most recent, enough for a person's day.
LIMIT = 50

# Change and VM task states grouped the way the Requests view filters them.
_CHANGE_RUNNING = {"planning", "planned", "awaiting_approval", "approved", "applying"}
_CHANGE_FAILED = {"failed", "partial", "rejected"}
_VM_RUNNING = {"queued", "running"}
_VM_FAILED = {"error"}
_PROVISION_BUCKETS = {"running": "running", "done": "done", "failed": "failed", "partial": "failed"}


@dataclass
class Request:
    """One row of My work's Requests table, whatever kind of request it is."""

    kind: str
    pk: int
    title: str
    url: str
    project: str
    status: str
    status_label: str
    bucket: str  # running | failed | done
    progress: int | None
    when: datetime
    note: str = ""

    @property
    def dom_id(self) -> str:
        return f"request-{self.kind}-{self.pk}"


def requests_topic(user_id: int) -> str:
    return f"requests:user:{user_id}"


def approvals_topic(project_id: int) -> str:
    return f"project:{project_id}:approvals"


# -- building rows ----------------------------------------------------------------------------------------


def _decisions(change_ids: list[int]) -> dict[int, str]:
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


def _change_progress(change: Any) -> int:
    from hosts.changes import news

    return news.progress(change)


def change_request(change: Any, note: str = "") -> Request:
    status = str(change.status)
    bucket = "running" if status in _CHANGE_RUNNING else "failed" if status in _CHANGE_FAILED else "done"
    return Request(
        kind="change",
        pk=change.pk,
        title=change.title,
        url=reverse("hosts:change", args=[change.pk]),
        project=change.project.name,
        status=status,
        status_label=change.get_status_display(),
        bucket=bucket,
        progress=_change_progress(change) if status == "applying" else None,
        when=change.created,
        note=note,
    )


def vm_task_request(task: Any) -> Request:
    state = str(task.state)
    bucket = "running" if state in _VM_RUNNING else "failed" if state in _VM_FAILED else "done"
    project = task.vm.host.project.name if task.vm.host_id else ""
    return Request(
        kind="vm",
        pk=task.pk,
        title=f"{task.action} {task.vm.name}" + (f" ({task.argument})" if task.argument else ""),
        url=reverse("hosts:vm", args=[task.vm_id]),
        project=project,
        status=state,
        status_label=task.get_state_display(),
        bucket=bucket,
        progress=task.progress if state == "running" else None,
        when=task.started,
        note=task.error,
    )


def deploy_request(entry: AuditEntry, result: AuditEntry | None = None) -> Request:
    # A deploy keeps no row of its own: its audit entry is the request, and the entry
    # ``deploy_finished`` records (same token) is how it ended.
    after = entry.after if isinstance(entry.after, dict) else {}
    name = after.get("name") or ""
    outcome = (result.after or {}).get("outcome", "") if result is not None else ""
    if result is None:
        status, label, bucket, note = "running", "Running", "running", f"on {entry.object_repr}"
    elif outcome == "ok":
        status, label, bucket, note = "success", "Succeeded", "done", f"on {entry.object_repr}"
    else:
        status, label, bucket, note = "error", "Failed", "failed", str(outcome)
    return Request(
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


def _deploy_results(entries: list[AuditEntry]) -> dict[str, AuditEntry]:
    tokens = [e.after.get("token") for e in entries if isinstance(e.after, dict) and e.after.get("token")]
    if not tokens:
        return {}
    results = AuditEntry.objects.filter(action=DEPLOY_RESULT, after__token__in=tokens)
    return {r.after["token"]: r for r in results}


def _deploy_rows(entries: list[AuditEntry]) -> list[Request]:
    results = _deploy_results(entries)
    return [
        deploy_request(e, results.get(e.after.get("token", "")) if isinstance(e.after, dict) else None)
        for e in entries
    ]


def provision_request(req: Any, states: list[str] | None = None) -> Request:
    """The row of a provisioning request; prefetch its ``vms`` (or pass their ``states``)."""
    from hosts.provision import flow as provision

    summary = provision.summary(req, states)
    note = ""
    if summary.status in ("failed", "partial"):
        # What went wrong, told once: the first VM that failed says why.
        note = next((vm.detail for vm in req.vms.all() if vm.state == "failed"), "")
    if req.vcenter_id is None:
        title = f"kickstart {req.name_pattern}"
    else:
        times = f" \N{MULTIPLICATION SIGN}{req.count}" if req.count != 1 else ""
        title = f"provision {req.name_pattern}{times}"
    return Request(
        kind="provision",
        pk=req.pk,
        title=title,
        url=reverse("hosts:provision_request", args=[req.pk]),
        project=req.project.name,
        status=summary.status,
        status_label=summary.label,
        bucket=_PROVISION_BUCKETS[summary.status],
        progress=summary.progress if summary.status == "running" else None,
        when=req.created,
        note=note,
    )


def my_requests(user: Any) -> list[Request]:
    """The user's own requests, in projects they can still see, newest first."""
    from hosts.models import Change, ProvisionRequest, VmTask

    visible = access.projects(user, "project.view")
    changes = list(
        Change.objects.filter(created_by=user, project__in=visible).select_related("project")[:LIMIT]
    )
    notes = _decisions([c.pk for c in changes])
    rows = [change_request(c, notes.get(c.pk, "")) for c in changes]
    tasks = VmTask.objects.filter(actor=user).select_related("vm__host__project")
    if not access.is_admin(user):
        tasks = tasks.filter(vm__host__project__in=visible)
    rows += [vm_task_request(t) for t in tasks[:LIMIT]]
    deploys = AuditEntry.objects.filter(actor=user, action="container.deploy")
    if not access.is_admin(user):
        deploys = deploys.filter(project__in=visible)
    rows += _deploy_rows(list(deploys.order_by("-id")[:LIMIT]))
    provisions = (
        ProvisionRequest.objects.filter(requester=user, project__in=access.projects(user, "provision.view"))
        .select_related("project")
        .prefetch_related("vms")  # each row's status is its VMs': one query for all of them
    )
    rows += [provision_request(p) for p in provisions[:LIMIT]]
    rows.sort(key=lambda r: r.when, reverse=True)
    return rows


# -- live ------------------------------------------------------------------------------------------------


def publish_change(change: Any, *, approvals: bool = True) -> None:
    """News of a change for its requester's My work and (``approvals``) its project's
    approvals queue. Called by hosts.changes.flow whenever a change's status or progress moves.
    """
    try:
        _publish_change(change, approvals=approvals)
    except Exception:
        # News only: the change itself must not fail because a row could not be pushed.
        log.warning("My work: change %s not published", getattr(change, "pk", None), exc_info=True)


def _publish_change(change: Any, *, approvals: bool) -> None:
    from hosts.models import Change

    change = Change.objects.select_related("project", "created_by", "approved_by").get(pk=change.pk)
    note = _decisions([change.pk]).get(change.pk, "")
    if change.created_by_id:
        html = render_to_string("portal/work/partials/request_row.html", {"r": change_request(change, note)})
        live.publish(requests_topic(change.created_by_id), html=html, data={"change": change.pk})
    if approvals and change.status in ("awaiting_approval", "approved", "rejected"):
        html = render_to_string(
            "portal/work/partials/approval.html",
            {"change": change, "runs": list(change.hosts.select_related("host")), "note": note},
        )
        live.publish(
            approvals_topic(change.project_id), html=html, data={"change": change.pk, "status": change.status}
        )


def publish_vm_task(task: Any) -> None:
    """News of a VM power or snapshot action for its requester's My work (hosts.vsphere.tasks)."""
    if not task.actor_id:
        return
    try:
        html = render_to_string("portal/work/partials/request_row.html", {"r": vm_task_request(task)})
    except Exception:
        log.warning("My work: VM task %s not published", task.pk, exc_info=True)
        return
    live.publish(requests_topic(task.actor_id), html=html, data={"vm_task": task.pk, "state": task.state})


def publish_provision(req: Any) -> None:
    """News of a provisioning request for its requester's My work (hosts.provision.flow.publish_vm)."""
    if not req.requester_id:
        return
    from hosts.models import ProvisionRequest

    try:
        # Read again: the row is every VM's state, not only the one that just moved.
        fresh = ProvisionRequest.objects.select_related("project").prefetch_related("vms").get(pk=req.pk)
        row = provision_request(fresh)
        html = render_to_string("portal/work/partials/request_row.html", {"r": row})
    except Exception:
        # News only: a VM's clone or enrollment must not fail because a row could not be pushed.
        log.warning("My work: provisioning request %s not published", req.pk, exc_info=True)
        return
    data = {"provision": req.pk, "status": row.status}
    live.publish(requests_topic(req.requester_id), html=html, data=data)


def _deploy_entry(host: Any, token: str) -> AuditEntry | None:
    return (
        AuditEntry.objects.filter(
            action="container.deploy", object_type="hosts.host", object_id=str(host.pk), after__token=token
        )
        .select_related("actor")
        .order_by("-id")
        .first()
    )


def _publish_deploy(request: AuditEntry, result: AuditEntry | None) -> None:
    if request.actor_id:
        row = deploy_request(request, result)
        html = render_to_string("portal/work/partials/request_row.html", {"r": row})
        live.publish(
            requests_topic(request.actor_id), html=html, data={"deploy": request.pk, "status": row.status}
        )


def deploy_started(host: Any, token: str) -> None:
    """The deploy's task has begun: its row appears, running, on the requester's My work."""
    try:
        request = _deploy_entry(host, token)
        if request is not None:
            _publish_deploy(request, None)
    except Exception:
        log.warning("My work: start of deploy %s on %s not published", token, host, exc_info=True)


def deploy_finished(host: Any, token: str, outcome: str) -> None:
    """Record how a deploy ended, for its requester's My work (hosts.fleet.tasks.deploy_container).

    ``outcome`` is "ok" or the sentence the deploy page showed.
    """
    try:
        _deploy_finished(host, token, outcome)
    except Exception:
        # The deploy itself is done either way: a missing row is news lost, not a failed deploy.
        log.warning("My work: outcome of deploy %s on %s not recorded", token, host, exc_info=True)


def _deploy_finished(host: Any, token: str, outcome: str) -> None:
    from . import audit

    request = _deploy_entry(host, token)
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
    _publish_deploy(request, result)


# -- views -----------------------------------------------------------------------------------------------


def my_work(request: HttpRequest) -> HttpResponse:
    from hosts.models import Change, Host, Profile
    from registry.views import visible_registries

    access.require(request.user, "portal.use")
    user = request.user
    view = request.GET.get("view", "all")
    if view not in VIEWS:
        view = "all"
    rows = my_requests(user)
    if view != "all":
        rows = [r for r in rows if r.bucket == view]
    usable = access.projects(user, "host.operate")
    approvable = access.projects(user, "change.approve")
    context = {
        "memberships": Membership.objects.filter(user=user)
        .select_related("project")
        .order_by("project__name"),
        "is_admin": access.is_admin(user),
        "hosts": Host.objects.filter(project__in=usable).select_related("project").order_by("name")[:LIMIT],
        "registries": visible_registries(user).order_by("name")[:LIMIT],
        "profiles": Profile.objects.filter(project__in=access.projects(user, "change.plan"))
        .select_related("project")
        .order_by("name")[:LIMIT],
        "requests": rows,
        "view": view,
        "views": VIEWS,
        "topic": requests_topic(user.pk),
        "waiting": Change.objects.filter(project__in=approvable, status="awaiting_approval").count(),
        "may_approve": approvable.exists(),
    }
    return render(request, "portal/work/my_work.html", context)


def approvals(request: HttpRequest) -> HttpResponse:
    from hosts.models import Change

    access.require(request.user, "portal.use")
    projects = access.projects(request.user, "change.approve")
    project_ids = list(projects.values_list("pk", flat=True))
    if not project_ids:
        raise Http404("you approve changes in no project")
    waiting = list(
        Change.objects.filter(project_id__in=project_ids, status="awaiting_approval")
        .select_related("project", "created_by")
        .prefetch_related("hosts__host")
    )
    items = [{"change": c, "runs": list(c.hosts.all())} for c in waiting]
    context = {"items": items, "topics": " ".join(approvals_topic(pk) for pk in project_ids)}
    return render(request, "portal/work/approvals.html", context)


def _decide(request: HttpRequest, pk: int, approve: bool) -> HttpResponse:
    from hosts.changes import approval
    from hosts.changes.errors import ChangeError
    from hosts.changes.views import _change_or_404

    change = _change_or_404(request, pk, "change.approve")
    comment = request.POST.get("comment", "").strip()
    if len(comment) > COMMENT_MAX:
        error = f"The comment is too long (at most {COMMENT_MAX} characters)."
    else:
        try:
            (approval.approve if approve else approval.reject)(change, request.user, comment=comment)
        except ChangeError as exc:
            error = str(exc)
        else:
            error = ""
    if request.headers.get("HX-Request"):
        change.refresh_from_db()
        context = {
            "change": change,
            "runs": list(change.hosts.select_related("host")),
            "note": _decisions([change.pk]).get(change.pk, ""),
            "error": error,
        }
        return render(request, "portal/work/partials/approval.html", context)
    if error:
        messages.error(request, error)
    else:
        messages.success(request, f"{change} {'approved' if approve else 'rejected'}.")
    return redirect("approvals")


@require_POST
def approve(request: HttpRequest, pk: int) -> HttpResponse:
    return _decide(request, pk, approve=True)


@require_POST
def reject(request: HttpRequest, pk: int) -> HttpResponse:
    return _decide(request, pk, approve=False)
