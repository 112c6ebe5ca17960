"""The approvals queue (Project admins): the plans waiting for the signed-in person, with
their diffs; a plan arrives live on ``project:ID:approvals``. Deciding goes through
``hosts.changes.approval.approve`` / ``reject``: the one flow, audited there."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from hosts.changes import approval
from hosts.changes.errors import ChangeError
from hosts.changes.views import change_or_404
from hosts.changes.work import approvals_topic, decisions
from hosts.models.changes import Change
from portal import access

COMMENT_MAX = 1000


def approvals(request: HttpRequest) -> HttpResponse:
    access.require(request.user, "portal.use")
    projects = access.projects(request.user, "change.approve")
    project_ids = list(projects.values_list("pk", flat=True))
    if not project_ids:
        raise Http404("you approve changes in no project")
    waiting = list(
        Change.objects.filter(project_id__in=project_ids, status="awaiting_approval")
        .select_related("project", "created_by")
        .prefetch_related("runs__host")
    )
    items = [{"change": c, "runs": list(c.runs.all())} for c in waiting]
    context = {"items": items, "topics": " ".join(approvals_topic(pk) for pk in project_ids)}
    return render(request, "portal/work/approvals.html", context)


def _decide(request: HttpRequest, pk: int, approve: bool) -> HttpResponse:
    change = change_or_404(request, pk, "change.approve")
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
            "runs": list(change.runs.select_related("host")),
            "note": decisions([change.pk]).get(change.pk, ""),
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
