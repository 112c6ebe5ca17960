"""An application as its hosts' engines report it: its containers (state, health, ports) and
volumes, read from each host it was placed on. An engine that does not answer is named, and
the others are still shown."""

from __future__ import annotations

from dataclasses import dataclass, field

from hosts.applications import engine_deploy as engine_apps
from hosts.applications.engine_spec import PROJECT
from hosts.fleet import engine
from hosts.models import Application, Host


@dataclass
class EngineView:
    containers: list[engine_apps.ContainerState] = field(default_factory=list)
    #: (host name, volume name)
    volumes: list[tuple[str, str]] = field(default_factory=list)
    #: "host: why it did not answer"
    errors: list[str] = field(default_factory=list)
    names: dict[int, str] = field(default_factory=dict)

    @property
    def rows(self) -> list[tuple[engine_apps.ContainerState, str]]:
        """Each container with the name of its host."""
        return [(c, self.names.get(c.host_id, "")) for c in self.containers]


def read(application: Application) -> EngineView:
    view = EngineView()
    if application.state in (Application.State.QUEUED, Application.State.REMOVED):
        return view
    ids = {p.host_id for p in application.placements.all()}
    for host in Host.objects.filter(pk__in=ids, enabled=True).order_by("name"):
        view.names[host.pk] = host.name
        try:
            sdk = engine.client_for(host, timeout=10)
            try:
                view.containers += engine_apps.status(application.name, {host.pk: sdk})
                found = sdk.api.volumes(filters={"label": f"{PROJECT}={application.name}"}).get("Volumes")
                view.volumes += [(host.name, v["Name"]) for v in found or ()]
            finally:
                sdk.close()
        except Exception as exc:  # noqa: BLE001 - one engine down must not hide the others
            view.errors.append(f"{host.name}: {engine.describe_error(exc, host.docker_url)}")
    view.containers.sort(key=lambda c: (c.service, c.replica))
    return view
