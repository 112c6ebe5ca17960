"""Recreating a container (``hosts.fleet.recreate``): a confirmation saying what will happen,
then the task queued; the new container reaches the host page live, or the reason it failed."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from hosts.fleet import containers as engine_containers
from hosts.fleet import engine, services
from hosts.models import Host
from portal.refused import Refused


@require_http_methods(["GET", "POST"])
def container_recreate(request: HttpRequest, pk: int, container_id: str) -> HttpResponse:
    host = Host.objects.select_related("project").get_or_404(request.user, pk, "host.operate")
    services.container_id_or_404(container_id)
    if request.method == "POST":
        try:
            services.request_recreate(host, container_id)
        except Refused as exc:
            messages.error(request, exc.message)
        else:
            messages.success(
                request,
                f"Recreating container {container_id[:12]}: the new one appears on this page once it runs.",
            )
        return redirect("hosts:host", pk=host.pk)
    if not host.enabled:
        raise Http404(f"Host {host.name} is disabled.")
    try:
        sdk = engine.client_for(host, timeout=4)
        try:
            found = engine_containers.container_summary(sdk, container_id)
        finally:
            sdk.close()
    except Exception as exc:  # noqa: BLE001 - told, not raised
        messages.error(request, engine.describe_error(exc, host.docker_url))
        return redirect("hosts:host", pk=host.pk)
    if found is None:
        raise Http404("No such container.")
    return render(request, "hosts/fleet/recreate_confirm.html", {"host": host, "container": found})
