"""An engine's containers, images and volumes as the inventory keeps them: one call per kind,
each object turned into the fields of an ``EngineObject`` row. Engine text is kept as given
(the templates escape it); only the haystack, what a search matches, is lowercased."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from hosts.fleet import containers as engine_containers

CONTAINER, IMAGE, VOLUME = "container", "image", "volume"
KINDS = (CONTAINER, IMAGE, VOLUME)


@dataclass(frozen=True)
class Seen:
    """One object as an engine reported it."""

    kind: str
    engine_id: str
    name: str
    image: str = ""
    state: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    ports: list[str] = field(default_factory=list)

    @property
    def haystack(self) -> str:
        return haystack(self.name, self.image, self.labels, self.ports)

    def fields(self) -> dict[str, Any]:
        """The row's values (its host and time are the keeper's)."""
        return {
            "name": self.name[:255],
            "image": self.image,
            "state": self.state[:20],
            "labels": self.labels,
            "ports": self.ports,
            "haystack": self.haystack,
        }


def haystack(name: str, image: str, labels: dict[str, str], ports: Iterable[str]) -> str:
    """Each field on its own line, so that a term never matches across two of them."""
    lines = [name, image, *(f"{key}={value}" for key, value in sorted(labels.items())), *ports]
    return "\n".join(line.replace("\n", " ") for line in lines if line).lower()


def from_container(summary: engine_containers.ContainerSummary) -> Seen:
    return Seen(
        CONTAINER,
        summary.id,
        summary.name,
        image=summary.image,
        state=summary.state,
        labels=dict(summary.labels),
        ports=list(summary.ports),
    )


def from_image(item: dict[str, Any]) -> Seen:
    tags = [t for t in item.get("RepoTags") or () if t != "<none>:<none>"]
    short = str(item["Id"]).removeprefix("sha256:")[:12]
    return Seen(IMAGE, item["Id"], tags[0] if tags else short, image="\n".join(tags), labels=_labels(item))


def from_volume(item: dict[str, Any]) -> Seen:
    return Seen(VOLUME, item["Name"], item["Name"], state=item.get("Driver", ""), labels=_labels(item))


def _labels(item: dict[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in (item.get("Labels") or {}).items()}


def read(sdk: Any, kinds: Iterable[str] = KINDS) -> dict[str, list[Seen]]:
    """What the engine holds of ``kinds``: one call each (containers all, stopped ones too)."""
    found: dict[str, list[Seen]] = {}
    for kind in kinds:
        if kind == CONTAINER:
            found[kind] = [from_container(s) for s in engine_containers.list_containers(sdk)]
        elif kind == IMAGE:
            found[kind] = [from_image(i) for i in sdk.api.images() or ()]
        elif kind == VOLUME:
            found[kind] = [from_volume(v) for v in (sdk.api.volumes() or {}).get("Volumes") or ()]
    return found
