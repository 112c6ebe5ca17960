"""What a tag is, as the portal shows it: read from manifests and config blobs.

Pure functions from what a registry returned to plain dataclasses (cached as they
are), so the pages never look at raw registry JSON. A manifest of a type the
portal does not know becomes a TagDetails with ``known=False``, never an error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .clients.distribution import DIGEST, IMAGE_TYPES, INDEX_TYPES, Manifest, valid_reference

#: Index entries that are not runnable images (BuildKit attestations).
ATTESTATION = "attestation-manifest"


@dataclass(frozen=True)
class Layer:
    digest: str
    media_type: str
    size: int


@dataclass
class Image:
    """One runnable image: a platform of an index, or a tag's only image."""

    digest: str
    media_type: str
    os: str = ""
    architecture: str = ""
    variant: str = ""
    created: str = ""
    author: str = ""
    layers: list[Layer] = field(default_factory=list)
    config_size: int = 0
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    ports: list[str] = field(default_factory=list)
    env_names: list[str] = field(default_factory=list)
    working_dir: str = ""
    user: str = ""
    error: str = ""

    @property
    def platform(self) -> str:
        return "/".join(part for part in (self.os, self.architecture, self.variant) if part) or "unknown"

    @property
    def size(self) -> int:
        """Compressed: what a pull downloads (layers and config)."""
        return self.config_size + sum(layer.size for layer in self.layers)


@dataclass(frozen=True)
class PlatformSize:
    """Compressed layers plus config of one image; ``platform`` is "" for a tag's only image."""

    platform: str
    size: int


@dataclass
class TagDetails:
    repository: str
    tag: str
    digest: str = ""
    media_type: str = ""
    known: bool = True
    manifest_size: int = 0
    annotations: dict[str, str] = field(default_factory=dict)
    images: list[Image] = field(default_factory=list)
    #: Set when the tag could not be read (deleted meanwhile, registry error).
    error: str = ""
    error_kind: str = ""

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES

    @property
    def linkable(self) -> bool:
        """A tag name the registry sent that is not a valid tag is shown, never made a URL."""
        return valid_reference(self.tag)

    @property
    def platforms(self) -> list[str]:
        return [image.platform for image in self.images]

    @property
    def sizes(self) -> list[PlatformSize]:
        """What a pull downloads, per platform: an index's platforms are pulled one at a
        time, so their sizes are never added up (nor the manifests' own bytes counted)."""
        return [PlatformSize(image.platform if self.is_index else "", image.size) for image in self.images]

    @property
    def created(self) -> str:
        """The newest of its images' creation dates (ISO 8601 sorts as text)."""
        return max((image.created for image in self.images if image.created), default="")


def _strings(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): str(v) for k, v in value.items()}


def _list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(v) for v in value]
    return []


def _int(value: Any) -> int:
    try:
        return max(int(value), 0)
    except (TypeError, ValueError):
        return 0


def config_digest(manifest: Manifest) -> str:
    config = manifest.doc.get("config")
    digest = config.get("digest", "") if isinstance(config, dict) else ""
    return digest if isinstance(digest, str) and DIGEST.match(digest) else ""


def compressed_size(manifest: Manifest) -> int:
    """An image manifest's layers plus its config, as its descriptors declare them."""
    layers = manifest.doc.get("layers")
    config = manifest.doc.get("config")
    declared = [*(layers if isinstance(layers, list) else []), config]
    return sum(_int(d.get("size")) for d in declared if isinstance(d, dict))


def platform_of(descriptor: dict[str, Any]) -> str:
    """``os/architecture[/variant]`` from an index entry's ``platform``."""
    platform = found if isinstance(found := descriptor.get("platform"), dict) else {}
    parts = (str(platform.get(k) or "") for k in ("os", "architecture", "variant"))
    return "/".join(part for part in parts if part) or "unknown"


def child_descriptors(manifest: Manifest) -> list[dict[str, Any]]:
    """The index entries worth showing as platforms (valid digests, not attestations)."""
    entries = manifest.doc.get("manifests")
    out = []
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or not DIGEST.match(str(entry.get("digest", ""))):
            continue
        annotations = _strings(entry.get("annotations"))
        if annotations.get("vnd.docker.reference.type") == ATTESTATION:
            continue
        out.append(entry)
    return out


def image_from(
    manifest: Manifest, config: dict[str, Any] | None, platform: dict[str, Any] | None = None
) -> Image:
    """An Image from an image manifest and its config blob (``None``: the config could not be read)."""
    layers = manifest.doc.get("layers")
    config_descriptor = manifest.doc.get("config")
    image = Image(
        digest=manifest.digest,
        media_type=manifest.media_type,
        layers=[
            Layer(str(layer.get("digest", "")), str(layer.get("mediaType", "")), _int(layer.get("size")))
            for layer in (layers if isinstance(layers, list) else [])
            if isinstance(layer, dict)
        ],
        config_size=_int(config_descriptor.get("size")) if isinstance(config_descriptor, dict) else 0,
        annotations=_strings(manifest.doc.get("annotations")),
    )
    platform = platform or {}
    image.os = str(platform.get("os") or "")
    image.architecture = str(platform.get("architecture") or "")
    image.variant = str(platform.get("variant") or "")
    if config is None:
        image.error = "the image configuration could not be read"
        return image
    image.os = str(config.get("os") or image.os)
    image.architecture = str(config.get("architecture") or image.architecture)
    image.variant = str(config.get("variant") or image.variant)
    image.created = str(config.get("created") or "")
    image.author = str(config.get("author") or "")
    container = found if isinstance(found := config.get("config"), dict) else {}
    image.labels = _strings(container.get("Labels"))
    image.entrypoint = _list(container.get("Entrypoint"))
    image.cmd = _list(container.get("Cmd"))
    ports = container.get("ExposedPorts")
    image.ports = sorted(str(p) for p in ports) if isinstance(ports, dict) else []
    # Only the names: values are often secrets baked into images by mistake.
    image.env_names = [str(e).split("=", 1)[0] for e in _list(container.get("Env"))]
    image.working_dir = str(container.get("WorkingDir") or "")
    image.user = str(container.get("User") or "")
    return image


_NUMBER = re.compile(r"(\d+)")


def version_key(tag: str) -> tuple[Any, ...]:
    """Natural order: build-9 < build-10, 1.9 < 1.10 (numbers compared as numbers)."""
    return tuple(
        (0, int(part), "") if part.isdigit() else (1, 0, part) for part in _NUMBER.split(tag) if part
    )


def known_type(media_type: str) -> bool:
    return media_type in INDEX_TYPES or media_type in IMAGE_TYPES


#: The label a scan's highest severity gets (Clarity's); none found is a success.
SEVERITY_CLASSES = {
    "Critical": "label-danger",
    "High": "label-danger",
    "Medium": "label-warning",
    "Low": "label-info",
}


def scan_summary(artifact: dict[str, Any]) -> dict[str, Any] | None:
    """What a Harbor artifact's ``scan_overview`` says, as the pages show it (None: not scanned).
    Harbor keys the overview by report type; the first report is the one its UI shows too."""
    overview = artifact.get("scan_overview")
    if not isinstance(overview, dict) or not overview:
        return None
    report = next(iter(overview.values()))
    if not isinstance(report, dict):
        return None
    summary = found if isinstance(found := report.get("summary"), dict) else {}
    counts = found if isinstance(found := summary.get("summary"), dict) else {}
    severity = str(report.get("severity", ""))
    return {
        "status": str(report.get("scan_status", "")),
        "severity": severity,
        "severity_class": SEVERITY_CLASSES.get(severity, "label-success"),
        "total": summary.get("total", 0),
        "fixable": summary.get("fixable", 0),
        "counts": [(sev, counts[sev]) for sev in ("Critical", "High", "Medium", "Low") if counts.get(sev)],
    }
