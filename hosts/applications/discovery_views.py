"""Adopting an unmanaged Compose project from the Applications page (``hosts.applications.adoption``).
The list itself is on that page (``hosts.applications.views.apps``, from ``discovery.read``).
"""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from hosts.applications import adoption
from portal import access
from portal.refused import Refused


@require_POST
def adopt(request: HttpRequest) -> HttpResponse:
    """POST project (its id) and name (the Compose project's): adopt it, then show its page."""
    project_id = request.POST.get("project", "")
    project = (
        access.projects(request.user, "app.view").filter(pk=int(project_id)).first()
        if project_id.isdigit() and len(project_id) < 10
        else None
    )
    if project is None:
        raise Http404("no such project")
    try:
        application = adoption.adopt(request.user, project, request.POST.get("name", ""))
    except Refused as exc:
        messages.error(request, exc.message)
        return redirect("hosts:apps")
    messages.success(request, f"{application.name} adopted: the portal manages it from now on.")
    return redirect("hosts:app", pk=application.pk)
