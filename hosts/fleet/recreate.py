"""Recreate a container from the newest image of its tag, with the configuration it has (issue 17:
"Recreate / update a container"), as Portainer's "Recreate" with "pull latest image" does.

The engine's inspect is the configuration: ``Config`` and ``HostConfig`` go back to the create
call as they came (name, environment, command, ports, volumes, restart policy, labels, limits),
and the container's networks are joined again with their aliases and fixed addresses. The old
container is kept, renamed and stopped, until the new one has been running for ``SETTLE``
seconds; when the new one cannot be made, cannot start or exits at once, it is removed and the
old one gets its name back and runs again, as it was.

Edit and recreate is the same swap with ``Edits``: the whole environment and the published ports as
a person set them, with or without the pull.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import docker.errors

from hosts.fleet.endpoint import EngineError

#: How long the new container must stay up to count as running (a crash at start shows by then).
SETTLE = 3.0
#: What of a network endpoint a new container takes again; the rest (addresses the engine gave,
#: ids) is the engine's to give anew.
_ENDPOINT_KEYS = ("Aliases", "Links", "IPAMConfig", "DriverOpts")


def _endpoint(attrs: dict[str, Any], endpoint: dict[str, Any]) -> dict[str, Any]:
    kept = {key: endpoint[key] for key in _ENDPOINT_KEYS if endpoint.get(key)}
    # The engine adds the container's short id as an alias: the new one gets its own.
    aliases = [a for a in kept.get("Aliases") or () if a != attrs["Id"][:12]]
    if aliases:
        kept["Aliases"] = aliases
    else:
        kept.pop("Aliases", None)
    return kept


def config_of(attrs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The create call's body for a container like ``attrs`` (its inspect), and the networks to
    join after it is made (the engine takes one network at create)."""
    config = dict(attrs["Config"])
    if config.get("Hostname") == attrs["Id"][:12]:
        del config["Hostname"]  # the engine's default, the old id: the new one gets its own
    host_config = dict(attrs["HostConfig"])
    # Its anonymous volumes (an image's VOLUME) go to the new one, as Compose carries them over:
    # otherwise it would start with empty ones and the data would stay behind.
    named = {str(b).split(":")[1] for b in host_config.get("Binds") or () if str(b).count(":") >= 1}
    named |= {m.get("Target") for m in host_config.get("Mounts") or ()}
    anonymous = [
        {"Type": "volume", "Source": m["Name"], "Target": m["Destination"], "ReadOnly": not m.get("RW", True)}
        for m in attrs.get("Mounts") or ()
        if m.get("Type") == "volume" and m.get("Name") and m.get("Destination") not in named
    ]
    if anonymous:
        host_config["Mounts"] = [*(host_config.get("Mounts") or ()), *anonymous]
    config["HostConfig"] = host_config
    mode = str(attrs["HostConfig"].get("NetworkMode") or "")
    networks = (attrs.get("NetworkSettings") or {}).get("Networks") or {}
    if mode in ("host", "none") or mode.startswith("container:") or not networks:
        return config, {}
    first = mode if mode in networks else sorted(networks)[0]
    config["NetworkingConfig"] = {"EndpointsConfig": {first: _endpoint(attrs, networks[first])}}
    rest = {name: _endpoint(attrs, ep) for name, ep in networks.items() if name != first}
    return config, rest


@dataclass(frozen=True)
class Edits:
    """What a person changed: the environment (``KEY=value`` lines, all of it) and the published
    ports (``HostConfig.PortBindings``); None leaves that part as it was."""

    env: list[str] | None = None
    ports: dict[str, list[dict[str, str]]] | None = None

    def apply(self, config: dict[str, Any]) -> None:
        if self.env is not None:
            config["Env"] = self.env
        if self.ports is not None:
            config["HostConfig"]["PortBindings"] = self.ports
            # A port published must be exposed; those the image exposes stay exposed.
            config["ExposedPorts"] = {**(config.get("ExposedPorts") or {}), **{key: {} for key in self.ports}}


def _settled(sdk: Any, container_id: str, name: str) -> None:
    """Raise unless the container is still running ``SETTLE`` seconds after its start."""
    deadline = time.monotonic() + SETTLE
    while True:
        found = sdk.api.inspect_container(container_id)
        state = found["State"]
        # With a restart policy, a command that exits at once is started again and again: the
        # engine says Running between tries, so a restart counts as an exit.
        if not state.get("Running") or state.get("Restarting") or found.get("RestartCount"):
            tail = sdk.api.logs(container_id, tail=5).decode(errors="replace").strip()
            said = f": {tail[-300:]}" if tail else ""
            raise EngineError(f"the new {name} exited at once (code {state.get('ExitCode')}){said}")
        if time.monotonic() >= deadline:
            return
        time.sleep(0.25)  # polling the engine's state: it pushes nothing here


def run(sdk: Any, container_id: str, pull: Callable[[str], None] | None, edits: Edits | None = None) -> str:
    """Recreate the container ``container_id``: ``pull`` its image reference first (the newest
    image of its tag; None: the image it has), ``edits`` applied, then swap. The new container's
    id; raises with the engine's reason after putting the old one back."""
    attrs = sdk.api.inspect_container(container_id)
    name, image = attrs["Name"].lstrip("/"), attrs["Config"]["Image"]
    if pull is not None and image.startswith("sha256:"):
        raise EngineError(f"{name} was made from an image id, not a tag: there is nothing newer to pull")
    running = bool(attrs["State"].get("Running"))
    if pull is not None:
        pull(image)
    config, others = config_of(attrs)
    config["Image"] = image
    if edits is not None:
        edits.apply(config)
    sdk.api.rename(container_id, f"{name}-old-{container_id[:12]}")
    new = ""
    try:
        if running:
            sdk.api.stop(container_id, timeout=10)  # its ports and fixed addresses, free for the new one
        new = str(sdk.api.create_container_from_config(config, name=name)["Id"])
        for network, endpoint in others.items():
            sdk.api.connect_container_to_network(
                new,
                network,
                aliases=endpoint.get("Aliases"),
                links=endpoint.get("Links"),
                ipv4_address=(endpoint.get("IPAMConfig") or {}).get("IPv4Address"),
                ipv6_address=(endpoint.get("IPAMConfig") or {}).get("IPv6Address"),
                driver_opt=endpoint.get("DriverOpts"),
            )
        if running:
            sdk.api.start(new)
            _settled(sdk, new, name)
    except Exception:
        # Back as it was: the new one gone, the old one under its name, running if it was.
        if new:
            sdk.api.remove_container(new, force=True)
        sdk.api.rename(container_id, name)
        if running:
            sdk.api.start(container_id)
        raise
    # Its volumes stay: the new one mounts them. Should the engine refuse, the new one runs and the
    # old one shows on the host page under its -old- name.
    with contextlib.suppress(docker.errors.APIError):
        sdk.api.remove_container(container_id)
    return new
