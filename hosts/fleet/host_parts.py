"""Parts of a host's page that are read again on their own when news of them comes (static/hosts/
fleet.js, ``data-live-reload``): its Configuration card (its profiles and drift)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from hosts.models import Host
from portal import access


def drift_context(user: Any, host: Host) -> dict[str, Any]:
    """The card's rows (the drift check's, for those who see the project's changes) and whether
    the person may plan the repair."""
    return {
        "drift": list(host.drift.select_related("profile").order_by("profile__name"))
        if access.can(user, "change.view", host.project_id)
        else [],
        "can_rotate": access.can(user, "change.plan", host.project_id),
    }


@require_GET
def host_drift(request: HttpRequest, pk: int) -> HttpResponse:
    host = Host.objects.select_related("project").get_or_404(request.user, pk)
    return render(request, "hosts/fleet/host_drift.html", {"host": host, **drift_context(request.user, host)})
