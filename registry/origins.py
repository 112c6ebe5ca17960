"""Where a host's images came from, for the host page (``hosts.engine_objects.origins``, registered
in ``RegistryConfig.ready``): each tag naming a registry shared with the host's project is looked up
there through the cached browser, so a page costs no registry call while the cache holds the tag
(``REGISTRY_CACHE_SECONDS``), and a newer digest pushed under the tag shows at the next refresh.
A registry that cannot be reached is left alone for ``DOWN_SECONDS``: failures are not cached by the
browser, and every host page would otherwise wait on its timeouts again."""

from __future__ import annotations

from collections import defaultdict

from django.core.cache import cache
from django.urls import reverse

from hosts.engine_objects.origins import Origin
from hosts.engine_objects.reading import Image
from hosts.fleet.deploy import registry_host, repository_of
from hosts.models import Host

from .browse import Browser, cache_key
from .clients.distribution import valid_reference
from .clients.errors import RegistryError, Unreachable
from .images import TagDetails, scan_summary
from .models import Registry

#: How long a registry that could not be reached is not asked again for a host page.
DOWN_SECONDS = 60

#: One tag of an image on a host: the image, "registry/repository:tag", repository, tag.
Wanted = tuple[Image, str, str, str]


def _wanted(host: Host, images: list[Image]) -> dict[Registry, list[Wanted]]:
    registries: dict[str, Registry] = {}
    for registry in Registry.objects.filter(projects=host.project_id).order_by("pk"):
        registries.setdefault(registry.host.lower(), registry)
    wanted: dict[Registry, list[Wanted]] = defaultdict(list)
    for image in images:
        for ref in image.tags:
            known = registries.get(registry_host(ref))
            repository, _, tag = ref.rpartition(":")
            if known is not None and "/" in repository and valid_reference(tag):
                wanted[known].append((image, ref, repository_of(ref), tag))
    return wanted


def _local_digest(image: Image, registry: Registry, repository: str) -> str:
    """The digest the host has of ``repository`` in ``registry`` ("" when the engine never
    recorded one: an image built or loaded there, then tagged)."""
    for ref in image.digests:
        name, _, digest = ref.partition("@")
        if registry_host(name) == registry.host.lower() and repository_of(name) == repository:
            return digest
    return ""


def origins_for(host: Host, images: list[Image]) -> dict[str, list[Origin]]:
    found: dict[str, list[Origin]] = defaultdict(list)
    for registry, wanted in _wanted(host, images).items():
        by_repository: dict[str, list[Wanted]] = defaultdict(list)
        for item in wanted:
            by_repository[item[2]].append(item)
        down_key = cache_key(registry, "origins-down")
        down = cache.get(down_key)
        with Browser(registry) as browser:
            for repository, items in by_repository.items():
                try:
                    if down:
                        raise Unreachable(down)
                    # Each distinct tag once, fetched together (the browser reads them concurrently).
                    details = browser.tag_details(repository, sorted({tag for *_, tag in items}))
                    if any(d.error_kind == "Unreachable" for d in details.values()):
                        raise Unreachable(next(d.error for d in details.values() if d.error))
                except RegistryError as exc:
                    if isinstance(exc, Unreachable) and not down:
                        down = str(exc)
                        cache.set(down_key, down, DOWN_SECONDS)
                    for image, ref, _, _ in items:
                        found[image.id].append(Origin(ref, registry.name, error=str(exc)))
                    continue
                for image, ref, _, tag in items:
                    found[image.id].append(_origin(browser, registry, image, ref, repository, details[tag]))
    return dict(found)


def _origin(
    browser: Browser, registry: Registry, image: Image, ref: str, repository: str, details: TagDetails
) -> Origin:
    if details.error:
        return Origin(ref, registry.name, error=details.error)
    local = _local_digest(image, registry, repository)
    scan = None
    if registry.kind == Registry.Kind.HARBOR and local:
        try:
            scan = scan_summary(browser.harbor_artifact(repository, local))
        except RegistryError:
            scan = None  # the digest is gone from Harbor, or Harbor did not answer: nothing to show
    return Origin(
        ref,
        registry.name,
        url=reverse("registry:tag", args=[registry.pk, repository, details.tag]),
        outdated=bool(local and details.digest and details.digest != local),
        scan=scan,
    )
