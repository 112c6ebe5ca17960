"""Edit and recreate a container (issue 17): its environment and published ports changed, made
again as a recreate does (``hosts.fleet.recreate``: the old one kept until the new one runs, put
back if it cannot). A Provisioner's; the form starts from what the engine says the container has."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from hosts.fleet import services
from hosts.fleet.forms import ContainerEditForm, port_lines
from hosts.models import Host
from portal.refused import Refused


def _current(host: Host, container_id: str) -> dict[str, object]:
    """The container's name, image, environment and ports as the engine has them."""
    attrs = services.inspect_container(host, container_id)
    config = attrs.get("Config") or {}
    return {
        "name": str(attrs.get("Name", "")).lstrip("/"),
        "image": str(config.get("Image", "")),
        "environment": "\n".join(config.get("Env") or []),
        "ports": port_lines((attrs.get("HostConfig") or {}).get("PortBindings")),
    }


@require_http_methods(["GET", "POST"])
def container_edit(request: HttpRequest, pk: int, container_id: str) -> HttpResponse:
    host = Host.objects.select_related("project").get_or_404(request.user, pk, "host.operate")
    services.container_id_or_404(container_id)
    if not host.enabled:
        messages.error(request, f"Host {host.name} is disabled: enable it first.")
        return redirect("hosts:host", pk=host.pk)
    try:
        current = _current(host, container_id)
    except Refused as exc:
        messages.error(request, f"{host}: {exc.message}")
        return redirect("hosts:host", pk=host.pk)
    form = ContainerEditForm(request.POST or None, initial=current)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.request_recreate(
                host, container_id, env=data["environment"], ports=data["ports"], pull=data["pull"]
            )
        except Refused as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(
                request,
                f"Recreating {current['name']} with your changes: the new one appears here once it runs.",
            )
            return redirect("hosts:host", pk=host.pk)
    context = {
        "host": host,
        "container_id": container_id,
        "short_id": container_id[:12],
        "form": form,
        **current,
    }
    return render(request, "hosts/fleet/container_edit.html", context | current)
