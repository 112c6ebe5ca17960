"""The host page's Updates card and the "Check now" buttons: they translate; the rules (who may,
which hosts) are in hosts.patches.services. Whatever came from a host or a repository is only
ever rendered through autoescaping templates."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from hosts.models import Host, HostPatchStatus, PendingAdvisory
from hosts.patches import outcome, services
from hosts.patches.records import Nevra
from portal import access
from portal.refused import Refused


@require_GET
def host_updates(request: HttpRequest, pk: int) -> HttpResponse:
    """The host page's Updates card (read again on news of its patch status)."""
    host = Host.objects.select_related("project").get_or_404(request.user, pk)
    found = HostPatchStatus.objects.filter(host=host).first()
    advisories = list(PendingAdvisory.objects.filter(host=host)) if found is not None else []
    context = {
        "host": host,
        "patches": found,
        "advisories": advisories,
        "other_updates": outcome.other_updates(found.updates, advisories) if found is not None else [],
        "installed": sorted(Nevra.from_json(p) for p in found.installed) if found is not None else [],
        "can_operate": access.can(request.user, "host.operate", host.project_id),
        "can_plan": access.can(request.user, "change.plan", host.project_id),
    }
    return render(request, "hosts/patches/host_updates.html", context)


@require_POST
def host_refresh(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        host = services.request_refresh(request.user, pk)
    except Refused as exc:
        messages.error(request, str(exc))
        return redirect("hosts:host", pk=pk)
    messages.success(request, f"Reading the installed packages and repositories of {host.name}.")
    return redirect("hosts:host", pk=host.pk)


@require_POST
def fleet_refresh(request: HttpRequest) -> HttpResponse:
    try:
        count = services.request_fleet_refresh(request.user)
    except Refused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Reading the installed packages and repositories of {count} host(s).")
    return redirect("hosts:index")
