"""What the applications' tests share: hosts as the watchers leave them, an application's
objects on an engine by Compose's labels, waiting for a deploy, cleaning up after one, and the
Applications page as a browser ends up with it."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from hosts.models import Application, Host, HostStatus, Tag
from tests.lab import engines
from tests.lab.common import wait_until

GiB = 1024**3
BUSY = ("queued", "deploying")


def on(host: Host, *tags: str) -> Host:
    """As the engines watcher leaves a host: ON, with its memory and CPUs as its engine reported."""
    Host.objects.filter(pk=host.pk).update(status=HostStatus.ON, memory=4 * GiB, cpus=2, containers_total=0)
    host.tags.set([Tag.objects.get_or_create(name=t)[0] for t in tags])
    return host


def busybox_of(info: dict[str, Any]) -> str:
    """The busybox image the lab loads into every engine."""
    return next(ref for ref in info["images"] if ref.startswith("lab/busybox:"))


def labelled(info: dict[str, Any], project: str) -> dict[str, list[str]]:
    """The names of the Compose project's containers and volumes on one engine."""
    label = {"label": f"com.docker.compose.project={project}"}
    sdk = engines.connect(info)
    try:
        return {
            "containers": sorted(
                c["Names"][0].lstrip("/") for c in sdk.api.containers(all=True, filters=label)
            ),
            "volumes": sorted(v["Name"] for v in sdk.api.volumes(filters=label).get("Volumes") or []),
        }
    finally:
        sdk.close()


def deployed(application: Application, timeout: float = 180) -> Application:
    """The application once its deploy task has ended (whichever way)."""
    wait_until(
        lambda: Application.objects.get(pk=application.pk).state not in BUSY,
        timeout=timeout,
        what=f"the deploy of {application.name} to end",
    )
    application.refresh_from_db()
    return application


def clean(info: dict[str, Any], project: str) -> None:
    """Whatever a failed assertion left of the Compose project on the engine."""
    sdk = engines.connect(info)
    try:
        label = {"label": f"com.docker.compose.project={project}"}
        for c in sdk.api.containers(all=True, filters=label):
            sdk.api.remove_container(c["Id"], force=True)
        for n in sdk.api.networks(filters=label):
            sdk.api.remove_network(n["Id"])
        for v in sdk.api.volumes(filters=label).get("Volumes") or []:
            sdk.api.remove_volume(v["Name"])
    finally:
        sdk.close()


def apps_page(client: Any) -> str:
    """The Applications page as a browser ends up with it: its unmanaged section, which htmx asks
    for once the page is shown (``hosts:apps_unmanaged``), in place of its placeholder."""
    page = client.get(reverse("hosts:apps")).content.decode()
    section = client.get(reverse("hosts:apps_unmanaged")).content.decode()
    start = page.index('<div id="unmanaged-section"')
    end = page.index("</div>", start) + len("</div>")
    return page[:start] + section + page[end:]
