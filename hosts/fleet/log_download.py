"""A container's whole log as a file (issue 17: "``docker logs`` download"): streamed from the
engine as it reads it, never held in memory, with each line's time. Logs often hold what
containers print of their secrets, so only the host project's Provisioners may download them,
and each download is in the audit trail (who, which container; not what it held)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import docker.errors
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect
from django.views.decorators.http import require_GET

from hosts.fleet import engine, services
from hosts.models import Host
from portal import audit
from portal.refused import Refused


def open_log(user: Any, host: Host, container_id: str) -> tuple[str, Iterator[bytes]]:
    """The container's name and its log as chunks of bytes (the engine's connection closed when
    they end or are dropped). Refused on a disabled host, an unknown container or an engine
    that does not answer."""
    services.container_id_or_404(container_id)
    if not host.enabled:
        raise Refused(f"Host {host.name} is disabled: enable it first.")
    try:
        sdk = engine.client_for(host, timeout=30)
    except Exception as exc:  # noqa: BLE001 - told to the person
        raise Refused(f"{host}: {engine.describe_error(exc, host.docker_url)}", status=502) from None
    try:
        name = str(sdk.api.inspect_container(container_id)["Name"]).lstrip("/")
        chunks = sdk.api.logs(container_id, stream=True, follow=False, timestamps=True)
    except docker.errors.NotFound:
        sdk.close()
        raise Refused(f"{host} has no container {container_id[:12]}.", status=404) from None
    except Exception as exc:  # noqa: BLE001 - told to the person
        sdk.close()
        raise Refused(f"{host}: {engine.describe_error(exc, host.docker_url)}", status=502) from None
    audit.record(
        "container.logs_download",
        obj=host,
        project=host.project,
        actor=user,
        after={"container": container_id[:12], "name": name},
    )

    def stream() -> Iterator[bytes]:
        try:
            yield from chunks
        finally:
            sdk.close()

    return name, stream()


@require_GET
def container_log(request: HttpRequest, pk: int, container_id: str) -> HttpResponseBase:
    host = Host.objects.select_related("project").get_or_404(request.user, pk, "host.operate")
    try:
        name, chunks = open_log(request.user, host, container_id)
    except Refused as exc:
        if exc.status == 404:
            return HttpResponse(exc.message, status=404, content_type="text/plain; charset=utf-8")
        messages.error(request, exc.message)
        return redirect("hosts:container", pk=host.pk, container_id=container_id)
    response = StreamingHttpResponse(chunks, content_type="text/plain; charset=utf-8")
    # The engine's names are [a-zA-Z0-9][a-zA-Z0-9_.-]+; anything else is dropped from the header.
    safe = re.sub(r"[^A-Za-z0-9_.-]", "", name) or container_id[:12]
    response["Content-Disposition"] = f'attachment; filename="{safe}-{host.name}.log"'
    return response
