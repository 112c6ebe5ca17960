"""The console's page: pick a shell (or give a command), then the terminal (xterm.js) on it."""

from __future__ import annotations

from csp.decorators import csp_update
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from hosts.console.session import SHELLS
from hosts.fleet import services
from hosts.models import Host
from portal.refused import Refused


# xterm.js writes its layout and colours into <style> elements it creates (it has no nonce to
# give them), so this page alone lets inline styles in; scripts stay 'self' only.
# (django-csp's types allow a view only the request as argument: hence the ignore.)
@csp_update({"style-src": ["'unsafe-inline'"]})  # type: ignore[arg-type]
@require_GET
def container_console(request: HttpRequest, pk: int, container_id: str) -> HttpResponse:
    host = Host.objects.select_related("project").get_or_404(request.user, pk, "host.operate")
    services.container_id_or_404(container_id)
    context = {
        "host": host,
        "container_id": container_id,
        "shells": SHELLS,
        "idle_minutes": round(settings.CONSOLE_IDLE_SECONDS / 60),
    }
    try:
        attrs = services.inspect_container(host, container_id)
    except Refused as exc:
        return render(request, "hosts/console/console.html", {**context, "engine_error": exc.message})
    state = attrs.get("State") or {}
    context |= {
        "name": str(attrs.get("Name", "")).lstrip("/"),
        "running": bool(state.get("Running")) and not state.get("Paused"),
        "status": state.get("Status", ""),
    }
    return render(request, "hosts/console/console.html", context)
