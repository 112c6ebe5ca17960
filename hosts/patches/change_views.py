"""Patch changes in the browser: the list, the planning form, a change's page with its hosts
live, its buttons, and a project's maintenance windows. They translate: every rule is in
hosts.patches.changes and hosts.patches.maintenance, which the API calls too."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from hosts.models import Host, HostPatchStatus, PatchChange, PatchRun, Tag
from hosts.patches import changes, maintenance, news
from hosts.patches.change_forms import PatchChangeForm
from hosts.patches.plan import HostPatchPlan
from portal import access
from portal.models import Project
from portal.refused import Refused

#: A button's label and whether it asks first (what it starts cannot be taken back).
BUTTONS: dict[str, tuple[str, str]] = {
    "submit": ("Submit for approval", ""),
    "approve": ("Approve", ""),
    "reject": ("Reject", "Reject this patch change? It cannot be applied afterwards."),
    "apply": (
        "Apply",
        "Patch these hosts now (or at the project's next maintenance window)? Hosts may reboot.",
    ),
    "resume": ("Resume", "Go on with the next batch?"),
    "cancel": ("Cancel", "Cancel this patch change? Hosts not patched yet are skipped."),
}


def _raise(exc: Refused) -> None:
    if exc.status == 404:
        raise Http404(exc.message) from exc
    if exc.status == 403:
        raise PermissionDenied(exc.message) from exc


def _change(request: HttpRequest, pk: int) -> PatchChange:
    try:
        return changes.get(request.user, pk, "change.view")
    except Refused as exc:
        _raise(exc)
        raise


@require_GET
def patch_changes(request: HttpRequest) -> HttpResponse:
    access.require(request.user, "portal.use")
    found = list(
        changes.visible(request.user)
        .select_related("project", "created_by")
        .order_by("-created", "-pk")[:100]
    )
    plannable = access.projects(request.user, "change.plan").exists()
    return render(request, "hosts/patches/changes.html", {"changes": found, "may_plan": plannable})


def _host_choices(project: Project) -> list[tuple[str, str]]:
    statuses = {s.host_id: s for s in HostPatchStatus.objects.filter(host__project=project)}
    choices = []
    for host in Host.objects.filter(project=project).order_by("name"):
        found = statuses.get(host.pk)
        if found is None or found.read_at is None:
            note = "not checked yet"
        else:
            security = found.critical + found.important + found.moderate + found.low + found.security_other
            note = f"{security} security advisories, {found.pending_updates} updates"
        choices.append((str(host.pk), f"{host.name} ({note})"))
    return choices


def patch_new(request: HttpRequest) -> HttpResponse:
    """Plan a patch change: the project's hosts to tick (those ticked on the fleet or host page
    come ticked), what to apply and how to roll it out. Nothing runs until it is approved."""
    access.require(request.user, "portal.use")
    projects = list(access.projects(request.user, "change.plan").order_by("name"))
    if not projects:
        raise PermissionDenied("You may not plan changes in any project.")
    wanted = request.POST.get("project") or request.GET.get("project") or ""
    project = next((p for p in projects if str(p.pk) == wanted), projects[0])
    choices = _host_choices(project)
    tags = [
        (str(pk), name)
        for pk, name in Tag.objects.filter(hosts__project=project)
        .distinct()
        .order_by("name")
        .values_list("pk", "name")
    ]
    if request.method == "POST":
        form = PatchChangeForm(request.POST, host_choices=choices, tag_choices=tags)
        selection = form.selection() if form.is_valid() else None
        if selection is not None:
            data = form.cleaned_data
            try:
                change = changes.plan_change(
                    request.user,
                    project.pk,
                    # Both or neither: the service says which to give (as the API's answer).
                    host_ids=data["hosts"] or (None if data["tag"] else []),
                    tag_id=data["tag"] or None,
                    selection=selection,
                    batch_size=data["batch_size"],
                    pause_on_failure=data["pause_on_failure"],
                    success_window_hours=data["success_window_hours"],
                    title=data["title"],
                )
            except Refused as exc:
                form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            else:
                messages.success(
                    request, "Planned from the hosts' last check. Read the plan, then submit it."
                )
                return redirect("hosts:patch_change", pk=change.pk)
    else:
        ticked = [v for v in request.GET.getlist("hosts") if v.isdigit()]
        form = PatchChangeForm(initial={"hosts": ticked}, host_choices=choices, tag_choices=tags)
    return render(
        request, "hosts/patches/change_form.html", {"form": form, "projects": projects, "project": project}
    )


def _plans(runs: list[PatchRun]) -> list[tuple[PatchRun, HostPatchPlan]]:
    return [(run, HostPatchPlan.from_json(run.plan)) for run in runs]


@require_GET
def patch_change(request: HttpRequest, pk: int) -> HttpResponse:
    change = _change(request, pk)
    runs = list(
        PatchRun.objects.filter(change=change)
        .select_related("host", "change")
        .order_by("batch", "host__name")
    )
    context: dict[str, Any] = {
        "change": change,
        "runs": runs,
        "steps": [(name, *BUTTONS[name]) for name in changes.actions_for(change, request.user)],
        "topic": news.topic(change.pk, change.project_id),
    }
    if request.GET.get("part") == "summary":
        return render(request, "hosts/patches/partials/change_summary.html", context)
    if request.GET.get("part") == "runs":
        return render(request, "hosts/patches/partials/run_rows.html", context)
    context["plans"] = _plans(runs)
    return render(request, "hosts/patches/change.html", context)


@require_POST
def patch_change_act(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    if action not in changes.ACTIONS:
        raise Http404("no such action")
    try:
        change = changes.act(request.user, pk, action, request.POST.get("comment", ""))
    except Refused as exc:
        _raise(exc)
        messages.error(request, exc.message)
        return redirect("hosts:patch_change", pk=pk)
    label = BUTTONS.get(action, (action, ""))[0]
    messages.success(request, f"{label}: the change is now {change.get_status_display().lower()}.")
    return redirect("hosts:patch_change", pk=change.pk)


def _project(request: HttpRequest, pk: int) -> Project:
    project = Project.objects.filter(pk=pk).first()
    if project is None or not access.can(request.user, "change.view", project):
        raise Http404("no such project")
    return project


@require_POST
def window_add(request: HttpRequest, pk: int) -> HttpResponse:
    project = _project(request, pk)
    form = maintenance.WindowForm(request.POST)
    if not form.is_valid():
        errors = "; ".join(f"{name}: {' '.join(str(m) for m in e)}" for name, e in form.errors.items())
        messages.error(request, f"The window was not added ({errors}).")
        return redirect("project-detail", pk=project.pk)
    data = form.cleaned_data
    try:
        window = maintenance.add_window(
            request.user,
            project,
            weekday=int(data["weekday"]) if data["weekday"] != "" else None,
            start=data["start"],
            duration_minutes=data["duration_minutes"],
        )
    except Refused as exc:
        _raise(exc)
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Maintenance window added: {maintenance.label(window)}.")
    return redirect("project-detail", pk=project.pk)


@require_POST
def window_remove(request: HttpRequest, pk: int, window_id: int) -> HttpResponse:
    project = _project(request, pk)
    try:
        maintenance.remove_window(request.user, project, window_id)
    except Refused as exc:
        _raise(exc)
        messages.error(request, exc.message)
    else:
        messages.success(request, "Maintenance window removed.")
    return redirect("project-detail", pk=project.pk)
