"""Where a host's images came from: for each tag of a registry the portal knows, that registry's
word on it now (the tag moved to a newer digest; Harbor's scan summary).

The registry app answers (``registry.origins``, registered in ``RegistryConfig.ready``): hosts never
imports it. A registry that fails costs its own images their marker, never the host page."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hosts.engine_objects.reading import Image
from hosts.models import Host

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Origin:
    """One tag of an image, as the registry it names says it now."""

    tag: str  # the image's tag on the host, "registry/repository:tag"
    registry: str  # the registry's name in the portal
    url: str = ""  # the registry's page of the tag
    #: The tag there points at another digest than the one the host has: a pull would change it.
    outdated: bool = False
    #: Harbor's scan of the digest the host has (registry.images.scan_summary), None: not scanned.
    scan: dict[str, Any] | None = None
    error: str = ""  # the registry did not answer: nothing is known


#: ``reader(host, images)`` -> ``{image id: [Origin, …]}``, registered by the registry app.
OriginReader = Callable[[Host, list[Image]], dict[str, list[Origin]]]
ORIGIN_READERS: list[OriginReader] = []


def origins(host: Host, images: list[Image]) -> dict[str, list[Origin]]:
    """Every registered reader's origins of ``images``, by image id."""
    found: dict[str, list[Origin]] = {}
    for reader in ORIGIN_READERS:
        try:
            for image_id, items in reader(host, images).items():
                found.setdefault(image_id, []).extend(items)
        except Exception:  # a reader's bug must not take the host's page with it
            log.exception("reading where the images of host %s came from failed", host.pk)
    return found
