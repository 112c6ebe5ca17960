"""An application as its hosts' engines report it: its containers (state, health, ports) and
volumes, read from each host it was placed on. An engine that does not answer is named, and
the others are still shown."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

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
    #: Each host's address as the portal reaches its engine: where its published ports answer.
    addresses: dict[int, str] = field(default_factory=dict)

    @property
    def rows(self) -> list[tuple[engine_apps.ContainerState, str, list[Port]]]:
        """Each container with the name of its host and its published ports."""
        return [(c, self.names.get(c.host_id, ""), self.ports(c)) for c in self.containers]

    def ports(self, container: engine_apps.ContainerState) -> list[Port]:
        """Its published ports, a TCP one with the address a browser opens it at."""
        found = []
        for text in container.ports:
            bound, _, target = text.partition("->")
            ip, _, port = bound.rpartition(":")
            # Published on every address of the host: open it at the one the portal reaches it by.
            anywhere = ip in ("", "0.0.0.0", "::")  # noqa: S104 - read from the engine, not bound here
            where = self.addresses.get(container.host_id, "") if anywhere else ip
            tcp = target.endswith("/tcp") and where and port.isdigit()
            href = f"http://{f'[{where}]' if ':' in where else where}:{port}/" if tcp else ""
            found.append(Port(text, href))
        return found


@dataclass(frozen=True)
class Port:
    text: str  # "0.0.0.0:8080->80/tcp"
    href: str  # "http://photon-01:8080/", "" when not a TCP port a browser opens


def address_of(host: Host) -> dict[int, str]:
    """``{host id: the address the portal reaches its engine at}``."""
    return {host.pk: urlsplit(host.docker_url).hostname or ""}


def read(application: Application) -> EngineView:
    view = EngineView()
    # A removed one too: the volumes it kept are still on its hosts, until someone removes them.
    if application.state == Application.State.QUEUED:
        return view
    ids = {p.host_id for p in application.placements.all()}
    for host in Host.objects.filter(pk__in=ids, enabled=True).order_by("name"):
        view.names[host.pk] = host.name
        view.addresses.update(address_of(host))
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
