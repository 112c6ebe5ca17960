"""Applications' pages: deploy a template (fill in its variables, see the plan, then deploy),
an application's page (where each replica runs and why, its containers as the engines report
them, the deploy's progress live), roll back a failed deploy, remove one. A view only
translates: the rules are in ``hosts.applications.deployments``.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from hosts.applications import catalog, deployments, engine_view, operations, quota, tasks
from hosts.applications.forms import AppDeployForm
from hosts.applications.views import template_or_404
from hosts.models import Application, Host
from portal import access
from portal.refused import Refused


def _application(request: HttpRequest, pk: int, action: str = "app.view") -> Application:
    application = deployments.visible(request.user).filter(pk=pk).first()
    if application is None:
        raise Http404("no such application")
    access.require(request.user, action, application.project_id)
    return application


@require_http_methods(["GET", "POST"])
def deploy(request: HttpRequest, pk: int) -> HttpResponse:
    """GET: the form; POST "plan": the plan, nothing started; POST "deploy": plan again, deploy."""
    template = template_or_404(request, pk, "app.deploy")
    source = request.POST if request.method == "POST" else request.GET
    number = source.get("version", "")
    try:
        version = catalog.version_of(template, int(number) if number.isdigit() and len(number) < 10 else None)
    except Refused as exc:
        raise Http404(exc.message) from None
    hosts = list(
        Host.objects.filter(project_id=template.project_id, enabled=True).values_list("name", flat=True)
    )
    variables = catalog.variables_of(version.source)
    proposal = None
    if request.method == "POST":
        form = AppDeployForm(request.POST, hosts=hosts, variables=variables)
        if form.is_valid():
            try:
                proposal = deployments.propose(
                    request.user,
                    template,
                    name=form.cleaned_data["name"],
                    values=form.values(),
                    version=version.number,
                    one_host=form.cleaned_data["one_host"],
                )
                if request.POST.get("step") == "deploy" and proposal.plan.ok:
                    application = deployments.deploy(request.user, proposal)
                    messages.success(request, f"Deploying {application.name}: its progress is below.")
                    return redirect("hosts:app", pk=application.pk)
            except Refused as exc:
                field = exc.field if exc.field in form.fields else None
                for message in [exc.message, *exc.details]:
                    form.add_error(field, message)
                proposal = None
    else:
        form = AppDeployForm(initial={"name": template.name.lower()[:63]}, hosts=hosts, variables=variables)
    context = {
        "template": template,
        "version": version,
        "form": form,
        "proposal": proposal,
        "quota": quota.describe(template.project_id),
    }
    return render(request, "hosts/apps/deploy.html", context)


@require_GET
def application_detail(request: HttpRequest, pk: int) -> HttpResponse:
    application = _application(request, pk)
    context: dict[str, Any] = {
        "application": application,
        "placements": application.placements.select_related("host"),
        "topic": tasks.topic(application),
        "may_operate": access.can(request.user, "app.deploy", application.project_id),
        "max_replicas": operations.MAX_REPLICAS,
        "versions": application.template.versions.all() if application.template else [],
        "engines": engine_view.read(application),
    }
    return render(request, "hosts/apps/application.html", context)


@require_POST
def application_roll_back(request: HttpRequest, pk: int) -> HttpResponse:
    application = _application(request, pk, "app.deploy")
    try:
        deployments.request_roll_back(request.user, application)
    except Refused as exc:
        messages.error(request, exc.message)
    return redirect("hosts:app", pk=application.pk)


@require_POST
def application_update(request: HttpRequest, pk: int) -> HttpResponse:
    """Update to a version of the template (the newest, or the one asked: a roll back)."""
    application = _application(request, pk, "app.deploy")
    raw = request.POST.get("version", "")
    try:
        target = deployments.request_update(
            request.user, application, int(raw) if raw.isdigit() and len(raw) < 10 else None
        )
        messages.success(request, f"Updating {application.name} to v{target.number}: its progress is below.")
    except Refused as exc:
        messages.error(request, " ".join([exc.message, *exc.details]))
    return redirect("hosts:app", pk=application.pk)


@require_http_methods(["GET", "POST"])
def application_remove(request: HttpRequest, pk: int) -> HttpResponse:
    application = _application(request, pk, "app.deploy")
    if request.method == "POST":
        try:
            deployments.request_remove(request.user, application, volumes=request.POST.get("volumes") == "on")
        except Refused as exc:
            messages.error(request, exc.message)
        return redirect("hosts:app", pk=application.pk)
    context = {"application": application, "engines": engine_view.read(application)}
    return render(request, "hosts/apps/remove.html", context)
