"""A host's networks: created with a driver, subnet and gateway checked before the engine is
asked, removed when unused (never the engine's own, nor an application's), pruned as the
confirmation listed."""

from __future__ import annotations

import ipaddress
from typing import Any

import docker.errors
import docker.types

from hosts.engine_objects import reading
from hosts.engine_objects.common import (
    Pruned,
    application_names,
    check_operable,
    engine_of,
    find,
    owner_of,
    removable,
    valid_name,
)
from hosts.models import Host
from portal import access, audit
from portal.refused import Refused

NETWORK_DRIVERS = ("bridge", "macvlan", "ipvlan")


def _ipam(subnet: str, gateway: str) -> docker.types.IPAMConfig | None:
    if not subnet:
        if gateway:
            raise Refused("A gateway needs its subnet.", field="subnet", status=400)
        return None
    try:
        net = ipaddress.ip_network(subnet.strip(), strict=True)
    except ValueError:
        raise Refused(
            f"{subnet} is not a subnet (e.g. 172.30.0.0/24, host bits zero).", field="subnet", status=400
        ) from None
    if gateway:
        try:
            address = ipaddress.ip_address(gateway.strip())
        except ValueError:
            raise Refused(f"{gateway} is not an IP address.", field="gateway", status=400) from None
        if address not in net or address in (net.network_address, net.broadcast_address):
            raise Refused(
                f"The gateway {address} is not a host address of {net}.", field="gateway", status=400
            )
    pool = docker.types.IPAMPool(subnet=str(net), gateway=gateway.strip() or None)
    return docker.types.IPAMConfig(pool_configs=[pool])


def create_network(
    user: Any,
    host: Host,
    name: str,
    *,
    driver: str = "bridge",
    subnet: str = "",
    gateway: str = "",
    options: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
) -> str:
    check_operable(user, host)
    name = valid_name(name, "network")
    if driver not in NETWORK_DRIVERS:
        raise Refused(f"The driver is one of {', '.join(NETWORK_DRIVERS)}.", field="driver", status=400)
    ipam = _ipam(subnet, gateway)
    with engine_of(host) as sdk:
        if any(n["Name"] == name for n in sdk.api.networks(names=[name])):
            # The engine would make a second network of that name: one name, one network.
            raise Refused(f"{host} has a network named {name} already.", field="name", status=409)
        made = sdk.api.create_network(
            name, driver=driver, options=options or None, ipam=ipam, labels=labels or None
        )
    audit.record(
        "network.create",
        obj=host,
        project=host.project,
        actor=user,
        after={
            "network": name,
            "driver": driver,
            "subnet": subnet,
            "gateway": gateway,
            "labels": labels or {},
        },
    )
    return str(made["Id"])


def _network(sdk: Any, host: Host, network_id: str) -> reading.Network:
    return find(
        reading.read(sdk, kinds=("networks",)).networks, lambda n: n.id == network_id, "such network", host
    )


def network_of(user: Any, host: Host, network_id: str) -> reading.Network:
    """One network of the host, for its removal's confirmation."""
    access.require(user, "host.view", host.project_id)
    with engine_of(host) as sdk:
        return _network(sdk, host, network_id)


def remove_network(user: Any, host: Host, network_id: str) -> str:
    check_operable(user, host)
    with engine_of(host) as sdk:
        network = _network(sdk, host, network_id)
        if network.builtin:
            raise Refused(f"{network.name} is one of the engine's own networks: it stays.")
        removable(host, network.labels, network.used_by, f"network {network.name}")
        sdk.api.remove_network(network.id)
    audit.record(
        "network.remove", obj=host, project=host.project, actor=user, before={"network": network.name}
    )
    return network.name


def prunable_networks(holdings: reading.Holdings, host: Host) -> list[reading.Network]:
    apps = application_names(host)
    return [n for n in holdings.networks if not n.builtin and not n.used_by and not owner_of(n.labels, apps)]


def prune_networks(user: Any, host: Host, ids: list[str]) -> Pruned:
    """Remove the networks ``ids`` (what the confirmation listed) that are still prunable."""
    check_operable(user, host)
    done = Pruned()
    with engine_of(host) as sdk:
        now = {n.id: n for n in prunable_networks(reading.read(sdk, kinds=("networks",)), host)}
        for network_id in ids:
            network = now.get(network_id)
            if network is None:
                done.kept.append(
                    f"{network_id[:12]}: in use, an application's, or gone since the confirmation"
                )
                continue
            try:
                sdk.api.remove_network(network_id)
            except docker.errors.APIError as exc:
                done.kept.append(f"{network.name}: {exc.explanation or exc}")
                continue
            done.removed.append(network.name)
    audit.record(
        "network.prune",
        obj=host,
        project=host.project,
        actor=user,
        after={"removed": done.removed, "kept": done.kept},
    )
    return done
