"""Configuration changes: profiles, plan, approve, apply, verify, roll back, drift, undo.

Thin: permissions from portal.access, the flow in hosts.changes (planning, approval, revert), the work in
hosts.changes.tasks. Objects of a project the user cannot see are a 404.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from hosts.changes import approval as change_approval
from hosts.changes import desired, drift, errors, news, next_steps, outcome, services
from hosts.changes import runs as change_runs
from hosts.changes.forms import ProfileForm
from hosts.models import Host
from hosts.models.changes import Change, ChangeStatus, Drift, Profile
from portal import access, audit
from portal.http import AuthenticatedHttpRequest
from portal.queueing import QueueUnavailable
from portal.refused import Refused


def change_or_404(request: HttpRequest, pk: int, action: str = "change.view") -> Change:
    change = get_object_or_404(Change.objects.select_related("project", "profile", "reverts"), pk=pk)
    if not access.can(request.user, "change.view", change.project_id):
        raise Http404("no such change")
    access.require(request.user, action, change.project_id)
    return change


def _profile_or_404(request: HttpRequest, pk: int, action: str = "change.view") -> Profile:
    profile = get_object_or_404(Profile.objects.select_related("project"), pk=pk)
    if not access.can(request.user, "change.view", profile.project_id):
        raise Http404("no such profile")
    access.require(request.user, action, profile.project_id)
    return profile


def changes(request: HttpRequest) -> HttpResponse:
    access.require(request.user, "portal.use")
    projects = access.projects(request.user, "change.view")
    plannable = set(access.projects(request.user, "change.plan").values_list("pk", flat=True))
    profiles = list(
        Profile.objects.filter(project__in=projects)
        .select_related("project")
        .prefetch_related("hosts", "tags")
    )
    for profile in profiles:
        profile.targets = desired.hosts_of(profile)  # type: ignore[attr-defined]
        profile.may_plan = profile.project_id in plannable  # type: ignore[attr-defined]
    changes = list(
        Change.objects.filter(project__in=projects)
        .select_related("project", "created_by")
        .prefetch_related("runs")[:50]
    )
    for change in changes:
        change.status_label = outcome.status_label(change)  # type: ignore[attr-defined]
    context = {
        "profiles": profiles,
        "changes": changes,
        "drift": Drift.objects.filter(host__project__in=projects).select_related("host", "profile"),
        "may_plan": bool(plannable),
        "drift_topics": " ".join(drift.topic(pk) for pk in projects.values_list("pk", flat=True)),
    }
    return render(request, "hosts/changes.html", context)


def profile_edit(request: AuthenticatedHttpRequest, pk: int | None = None) -> HttpResponse:
    access.require(request.user, "portal.use")
    profile = _profile_or_404(request, pk, "change.plan") if pk else None
    if not access.projects(request.user, "change.plan").exists():
        raise Http404("no project to plan changes in")
    if request.method == "POST":
        form = ProfileForm(request.POST, user=request.user)
        if form.is_valid():
            data = form.cleaned_data
            before = profile.settings if profile else None
            if profile is None:
                profile = Profile(created_by=request.user)
            profile.project, profile.name = data["project"], data["name"]
            profile.description, profile.settings = data["description"], data["settings"]
            if (
                Profile.objects.filter(project=profile.project, name=profile.name)
                .exclude(pk=profile.pk)
                .exists()
            ):
                form.add_error("name", "A profile with this name exists in the project.")
            else:
                profile.save()
                profile.hosts.set(data["hosts"])
                profile.tags.set(data["tags"])
                audit.record(
                    "change.profile_save",
                    obj=profile,
                    project=profile.project,
                    before=before,
                    after=profile.settings,
                )
                messages.success(request, f"Profile {profile.name} saved.")
                return redirect("hosts:changes")
    else:
        form = ProfileForm(initial=ProfileForm.initial_from(profile) if profile else None, user=request.user)
    return render(request, "hosts/changes/profile_form.html", {"form": form, "profile": profile})


@require_POST
def change_plan(request: HttpRequest, pk: int) -> HttpResponse:
    """Plan the profile on its hosts (or the ones ticked): SSH reads only, in a task."""
    profile = _profile_or_404(request, pk, "change.plan")
    chosen = {int(v) for v in request.POST.getlist("hosts") if v.isdigit()}
    try:
        change = services.request_plan(profile, request.user, chosen)
    except Refused as exc:
        messages.error(request, f"{exc}. Edit the profile first." if exc.field == "settings" else str(exc))
        return redirect("hosts:changes")
    return redirect("hosts:change", pk=change.pk)


def change_detail(request: HttpRequest, pk: int) -> HttpResponse:
    change = change_or_404(request, pk)
    if change.status == ChangeStatus.APPLYING:
        change_runs.sweep_interrupted(change=change)
    runs = list(change.runs.select_related("host"))
    # Every read is the reader's own: it carries the buttons their role allows now.
    context = {
        **news.summary(change, runs),
        "runs": runs,
        "steps": next_steps.for_user(change, request.user, runs),
    }
    if request.GET.get("actions"):
        # Fetched by the live summary (pushed alike to every subscriber) for its reader.
        return render(request, "hosts/changes/partials/actions.html", context)
    if request.GET.get("runs"):
        # The page's second read, once its socket is live (static/portal/page.js): a plan that
        # finished before the subscription published its cards and its status to nobody.
        return render(request, "hosts/changes/partials/runs.html", {**context, "reread": True})
    return render(
        request, "hosts/changes/detail.html", {**context, "topic": news.topic(change, change.project_id)}
    )


def _act(request: HttpRequest, action: Any, change: Change, done: str = "") -> HttpResponse:
    """``done``: the message for a decision taken; none for work under way, whose state the
    page's summary shows and replaces live when it ends."""
    try:
        action()
    except (errors.ChangeError, QueueUnavailable) as exc:
        messages.error(request, str(exc))
    else:
        if done:
            messages.success(request, done)
    return redirect("hosts:change", pk=change.pk)


@require_POST
def change_approve(request: HttpRequest, pk: int) -> HttpResponse:
    change = change_or_404(request, pk, "change.approve")
    return _act(request, lambda: change_approval.approve(change, request.user), change, "Approved.")


@require_POST
def change_reject(request: HttpRequest, pk: int) -> HttpResponse:
    change = change_or_404(request, pk, "change.approve")
    return _act(request, lambda: change_approval.reject(change, request.user), change, "Rejected.")


@require_POST
def change_apply(request: HttpRequest, pk: int) -> HttpResponse:
    change = change_or_404(request, pk, "change.plan")
    if request.POST.get("confirm") != "yes":
        messages.error(request, "Tick the box to confirm you have read the diffs.")
        return redirect("hosts:change", pk=change.pk)
    return _act(request, lambda: change_approval.start_apply(change, request.user), change)


@require_POST
def change_revert(request: HttpRequest, pk: int) -> HttpResponse:
    original = change_or_404(request, pk, "change.plan")
    try:
        change = services.request_revert(original, request.user)
    except (errors.ChangeError, QueueUnavailable) as exc:
        messages.error(request, str(exc))
        return redirect("hosts:change", pk=original.pk)
    return redirect("hosts:change", pk=change.pk)


@require_POST
def host_rotate(request: HttpRequest, pk: int) -> HttpResponse:
    """Rotate one host's credentials: a new change, planned in a task; its page shows the plan."""
    host = get_object_or_404(Host.objects.select_related("project"), pk=pk)
    if not access.can(request.user, "host.view", host.project_id):
        raise Http404("No such host.")
    access.require(request.user, "change.plan", host.project_id)
    try:
        change = services.request_rotation([host], request.user)
    except QueueUnavailable as exc:
        messages.error(request, str(exc))
        return redirect("hosts:host", pk=host.pk)
    except errors.ChangeError as exc:
        messages.error(request, f"{exc}.")
        return redirect("hosts:host", pk=host.pk)
    return redirect("hosts:change", pk=change.pk)


@require_POST
def drift_check(request: HttpRequest) -> HttpResponse:
    try:
        count = services.request_drift_check(request.user)
    except Refused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Checking {count} host(s) for drift.")
    return redirect("hosts:changes")


@require_POST
def drift_fix(request: HttpRequest, pk: int) -> HttpResponse:
    """Bring one drifted host back to its profile: a new change (plan, approval, apply)."""
    row = get_object_or_404(Drift.objects.select_related("host", "profile"), pk=pk)
    if not access.can(request.user, "change.view", row.host.project_id):
        raise Http404("no such host")
    access.require(request.user, "change.plan", row.host.project_id)
    try:
        change = services.request_drift_fix(row, request.user)
    except QueueUnavailable as exc:
        messages.error(request, str(exc))
        return redirect("hosts:changes")
    except errors.ChangeError as exc:
        messages.error(request, f"{exc}. Edit the profile first.")
        return redirect("hosts:changes")
    return redirect("hosts:change", pk=change.pk)
