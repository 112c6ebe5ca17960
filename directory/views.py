"""The Admin's directory page: settings, group mappings, "Test connection". Each view
translates a request into a service call (directory.services) and its answer into a page."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from portal import access
from portal.http import AuthenticatedHttpRequest
from portal.models import Project
from portal.refused import Refused

from . import services
from .forms import MappingForm, ServerForm
from .models import GroupMapping


def _page(
    request: AuthenticatedHttpRequest,
    form: ServerForm | None = None,
    mapping_form: MappingForm | None = None,
    status: int = 200,
) -> HttpResponse:
    server = services.the_server()
    return render(
        request,
        "directory/settings.html",
        {
            "server": server,
            "form": form or ServerForm(instance=server),
            "mapping_form": mapping_form or MappingForm(),
            "mappings": server.mappings.select_related("project") if server else [],
        },
        status=status,
    )


def settings_page(request: AuthenticatedHttpRequest) -> HttpResponse:
    access.require(request.user, "portal.admin")
    if request.method != "POST":
        return _page(request)
    form = ServerForm(request.POST, instance=services.the_server())
    if not form.is_valid():
        return _page(request, form=form, status=400)
    services.save_server(request.user, form)
    messages.success(request, "Directory settings saved.")
    return redirect("directory:settings")


@require_POST
def test_connection(request: AuthenticatedHttpRequest) -> HttpResponse:
    access.require(request.user, "portal.admin")
    form = ServerForm(request.POST, instance=services.the_server())
    result = services.test_connection(request.user, form)
    return render(request, "directory/_probe.html", {"probe": result})


@require_POST
def mapping_add(request: AuthenticatedHttpRequest) -> HttpResponse:
    access.require(request.user, "portal.admin")
    server = services.the_server()
    if server is None:
        messages.error(request, "Save the server settings first.")
        return redirect("directory:settings")
    form = MappingForm(request.POST)
    if not form.is_valid():
        return _page(request, mapping_form=form, status=400)
    try:
        services.add_mapping(request.user, server, form)
    except Refused as refused:
        form.add_error(refused.field or None, refused.message)
        return _page(request, mapping_form=form, status=refused.status)
    messages.success(request, "Mapping added: it applies at each person's next sign-in or sync.")
    return redirect("directory:settings")


@require_POST
def mapping_remove(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    access.require(request.user, "portal.admin")
    services.remove_mapping(request.user, get_object_or_404(GroupMapping, pk=pk))
    messages.success(request, "Mapping removed: the roles it gave go at the next sign-in or sync.")
    return redirect("directory:settings")


def _project(request: AuthenticatedHttpRequest, pk: int) -> Project:
    # Outside a project, it does not exist: 404, not 403 (as the project page).
    return get_object_or_404(access.projects(request.user), pk=pk)


@require_POST
def project_group_add(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    project = _project(request, pk)
    try:
        # The service checks both values (the form only draws the fields).
        mapping = services.add_project_group(
            request.user, project, request.POST.get("group", ""), request.POST.get("role", "")
        )
    except Refused as refused:
        messages.error(request, refused.message)
    else:
        messages.success(
            request,
            f"Members of {mapping.group_dn} get the role {mapping.get_role_display()}: "
            "now for those already known to the portal, at first sign-in for the others.",
        )
    return redirect(reverse("project-detail", args=[project.pk]) + "#directory-groups")


@require_POST
def project_group_remove(request: AuthenticatedHttpRequest, pk: int, mapping_pk: int) -> HttpResponse:
    project = _project(request, pk)
    try:
        services.remove_project_group(request.user, project, mapping_pk)
    except Refused as refused:
        if refused.status == 404:
            raise Http404(refused.message) from None
        raise
    messages.success(request, "Group removed: the roles it gave in this project go with the next sync.")
    return redirect(reverse("project-detail", args=[project.pk]) + "#directory-groups")
