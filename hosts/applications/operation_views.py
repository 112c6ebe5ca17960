"""An application's operations from its page: stop, start or restart it or one of its services,
scale a service. POST only; each answers with the application's page, where the progress shows
live and a refusal is told. A view only translates: the rules are in
``hosts.applications.operations``."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from hosts.applications import operations
from hosts.applications.app_views import _application
from portal.refused import Refused


@require_POST
def operate(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    """Stop, start or restart the application, or the service POSTed as ``service``."""
    application = _application(request, pk, "app.deploy")
    if action not in operations.ACTIONS:
        raise Http404("no such action")
    service = request.POST.get("service", "").strip()
    try:
        operations.request_action(request.user, application, action, service)
    except Refused as exc:
        messages.error(request, exc.message)
    else:
        what = service or application.name
        messages.success(request, f"{action.capitalize()} of {what} queued: its progress is below.")
    return redirect("hosts:app", pk=application.pk)


@require_POST
def scale(request: HttpRequest, pk: int) -> HttpResponse:
    """Scale the service POSTed as ``service`` to ``replicas``."""
    application = _application(request, pk, "app.deploy")
    service, given = request.POST.get("service", "").strip(), request.POST.get("replicas", "").strip()
    try:
        if not given.isdigit() or len(given) > 3:
            raise Refused(f"A service runs 1 to {operations.MAX_REPLICAS} replicas: give a number.")
        operations.request_scale(request.user, application, service, int(given))
    except Refused as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Scaling {service} to {given}: its progress is below.")
    return redirect("hosts:app", pk=application.pk)
