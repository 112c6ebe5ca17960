"""An engine's images, volumes and networks as a host page shows them: each with the containers that use
it, read from one container list (images, mounts and networks) rather than one inspect per object.
The engine's words (names, labels, drivers) are kept as given: the templates escape them."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

#: The networks every engine has: never removed, never pruned.
BUILTIN_NETWORKS = frozenset({"bridge", "host", "none"})


@dataclass(frozen=True)
class Volume:
    name: str
    driver: str
    labels: dict[str, str]
    used_by: list[str] = field(default_factory=list)  # container names
    size: int | None = None  # bytes, where the engine counted it (docker system df)


@dataclass(frozen=True)
class Network:
    id: str
    name: str
    driver: str
    scope: str
    subnets: list[str]
    gateways: list[str]
    labels: dict[str, str]
    used_by: list[str] = field(default_factory=list)

    @property
    def builtin(self) -> bool:
        return self.name in BUILTIN_NETWORKS


Users = dict[str, list[str]]


def _users(sdk: Any) -> tuple[Users, Users, Users]:
    """``({volume name: container names}, {network id: …}, {image id: …})`` from one list."""
    volumes: Users = defaultdict(list)
    networks: Users = defaultdict(list)
    images: Users = defaultdict(list)
    for item in sdk.api.containers(all=True):
        name = (item.get("Names") or ["/?"])[0].lstrip("/")
        if item.get("ImageID"):
            images[item["ImageID"]].append(name)
        for mount in item.get("Mounts") or ():
            if mount.get("Type") == "volume" and mount.get("Name"):
                volumes[mount["Name"]].append(name)
        for attached in ((item.get("NetworkSettings") or {}).get("Networks") or {}).values():
            if attached.get("NetworkID"):
                networks[attached["NetworkID"]].append(name)
    return volumes, networks, images


@dataclass(frozen=True)
class Image:
    id: str  # sha256:…
    tags: list[str]
    size: int
    created: int
    used_by: list[str] = field(default_factory=list)
    #: ``registry/repository@sha256:…`` of each repository the engine pulled it from or pushed it to.
    digests: list[str] = field(default_factory=list)

    @property
    def short_id(self) -> str:
        return self.id.removeprefix("sha256:")[:12]


@dataclass(frozen=True)
class Holdings:
    volumes: list[Volume]
    networks: list[Network]
    images: list[Image] = field(default_factory=list)


ALL = ("volumes", "networks", "images")


def read(sdk: Any, *, sizes: bool = False, kinds: tuple[str, ...] = ALL) -> Holdings:
    """The engine's images, volumes and networks (those of ``kinds``; the others left empty),
    each with the containers that use it: one call for the containers and one per kind, one more
    with ``sizes`` (what each volume takes on disk, which makes the engine walk every volume:
    for a prune's confirmation rather than every page)."""
    used_volumes, used_networks, used_images = _users(sdk)
    size_of: dict[str, int] = {}
    if sizes and "volumes" in kinds:
        for v in sdk.api.df().get("Volumes") or ():
            usage = v.get("UsageData") or {}
            if usage.get("Size", -1) >= 0:
                size_of[v["Name"]] = int(usage["Size"])
    volumes = [
        Volume(
            name=v["Name"],
            driver=v.get("Driver", ""),
            labels=v.get("Labels") or {},
            used_by=sorted(used_volumes.get(v["Name"], [])),
            size=size_of.get(v["Name"]),
        )
        for v in (sdk.api.volumes().get("Volumes") or () if "volumes" in kinds else ())
    ]
    networks = []
    for n in sdk.api.networks() if "networks" in kinds else ():
        configs = (n.get("IPAM") or {}).get("Config") or []
        networks.append(
            Network(
                id=n["Id"],
                name=n["Name"],
                driver=n.get("Driver", ""),
                scope=n.get("Scope", ""),
                subnets=[c["Subnet"] for c in configs if c.get("Subnet")],
                gateways=[c["Gateway"] for c in configs if c.get("Gateway")],
                labels=n.get("Labels") or {},
                used_by=sorted(used_networks.get(n["Id"], [])),
            )
        )
    images = [
        Image(
            id=i["Id"],
            tags=[t for t in i.get("RepoTags") or () if t != "<none>:<none>"],
            size=int(i.get("Size") or 0),
            created=int(i.get("Created") or 0),
            used_by=sorted(used_images.get(i["Id"], [])),
            digests=[d for d in i.get("RepoDigests") or () if "@" in d],
        )
        for i in (sdk.api.images() if "images" in kinds else ())
    ]
    return Holdings(
        sorted(volumes, key=lambda v: v.name),
        sorted(networks, key=lambda n: n.name),
        sorted(images, key=lambda i: (i.tags or ["~"])[0]),
    )
