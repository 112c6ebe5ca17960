"""A host's images: removed (refused while a container uses one, naming them, unless a Project
admin forces it), pruned as the confirmation listed with the space the engine says it freed,
tagged."""

from __future__ import annotations

import re
from typing import Any

import docker.errors

from hosts.engine_objects import reading
from hosts.engine_objects.common import Pruned, check_operable, engine_of, find
from hosts.models import Host
from portal import access, audit
from portal.refused import Refused

IMAGE_ID = re.compile(r"^sha256:[0-9a-f]{64}$")
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
DOMAIN = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*(?::[0-9]+)?$")
PATH = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
TAG = re.compile(r"^\w[\w.-]{0,127}$")


def valid_repository(repository: str) -> bool:
    """Docker's reference grammar: ``[registry[:port]/]path[/path…]``; the first part is a
    registry only when it has a dot or a port or is localhost, else it is a (lowercase) path."""
    first, slash, rest = repository.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return bool(DOMAIN.match(first) and PATH.match(rest))
    return bool(PATH.match(repository))


def _known_id(host: Host, image_id: str) -> None:
    """An id of the engine's form (sha256:…), or a 404 before the engine is asked."""
    if not IMAGE_ID.match(image_id):
        raise Refused(f"{host} has no such image.", status=404)


def _image(sdk: Any, host: Host, image_id: str) -> reading.Image:
    return find(reading.read(sdk, kinds=("images",)).images, lambda i: i.id == image_id, "such image", host)


def image_of(user: Any, host: Host, image_id: str) -> reading.Image:
    """One image of the host, for its removal's confirmation or its tag form."""
    access.require(user, "host.view", host.project_id)
    _known_id(host, image_id)
    with engine_of(host) as sdk:
        return _image(sdk, host, image_id)


def _remove_image(sdk: Any, image: reading.Image, *, force: bool) -> None:
    """Each tag, then the image goes with the last one; an untagged one by its id. Forced, the
    engine also removes it from under stopped containers (never a running one's)."""
    for ref in image.tags or [image.id]:
        sdk.api.remove_image(ref, force=force)


def remove_image(user: Any, host: Host, image_id: str, *, force: bool = False) -> list[str]:
    """Remove an image (its tags, then its layers that nothing else holds). Refused while a
    container uses it, naming them, unless a Project admin forces it. Its tags, as they were."""
    check_operable(user, host)
    if force:
        access.require(user, "host.manage", host.project_id)
    _known_id(host, image_id)
    with engine_of(host) as sdk:
        image = _image(sdk, host, image_id)
        if image.used_by and not force:
            raise Refused(
                f"{', '.join(image.tags) or image.short_id} is used by {', '.join(image.used_by)}: remove "
                "them first (a Project admin may force it, for stopped containers)."
            )
        _remove_image(sdk, image, force=force)
    audit.record(
        "image.remove",
        obj=host,
        project=host.project,
        actor=user,
        before={"image": image.id, "tags": image.tags, "used_by": image.used_by},
        after={"forced": force},
    )
    return image.tags


def prunable_images(holdings: reading.Holdings) -> list[reading.Image]:
    """What an image prune would remove: every image no container (running or not) uses."""
    return [i for i in holdings.images if not i.used_by]


def prune_images(user: Any, host: Host, ids: list[str]) -> Pruned:
    """Remove the images ``ids`` (what the confirmation listed) still unused; what was freed is the
    engine's own count of its layers before and after (shared layers stay)."""
    check_operable(user, host)
    done = Pruned()
    with engine_of(host) as sdk:
        before = int(sdk.api.df().get("LayersSize") or 0)
        now = {i.id: i for i in prunable_images(reading.read(sdk, kinds=("images",)))}
        for image_id in ids:
            image = now.get(image_id)
            if image is None:
                done.kept.append(f"{image_id[7:19]}: in use or gone since the confirmation")
                continue
            try:
                _remove_image(sdk, image, force=False)
            except docker.errors.APIError as exc:
                done.kept.append(f"{', '.join(image.tags) or image.short_id}: {exc.explanation or exc}")
                continue
            done.removed.append(", ".join(image.tags) or image.short_id)
        done.freed = max(0, before - int(sdk.api.df().get("LayersSize") or 0))
    audit.record(
        "image.prune",
        obj=host,
        project=host.project,
        actor=user,
        after={"removed": done.removed, "kept": done.kept, "freed": done.freed},
    )
    return done


def tag_image(user: Any, host: Host, image_id: str, reference: str) -> str:
    """Give an image one more tag (``repository[:tag]``, ``latest`` when left out)."""
    check_operable(user, host)
    reference = reference.strip()
    repository, _, tag = (
        reference.rpartition(":") if ":" in reference.rsplit("/", 1)[-1] else (reference, "", "")
    )
    tag = tag or "latest"
    _known_id(host, image_id)
    if not valid_repository(repository) or not TAG.match(tag):
        raise Refused(
            "Not an image reference: lowercase repository[:tag], e.g. registry.example.com:5000/web:1.2.",
            field="reference",
            status=400,
        )
    with engine_of(host) as sdk:
        image = _image(sdk, host, image_id)
        sdk.api.tag(image.id, repository, tag)
    audit.record(
        "image.tag",
        obj=host,
        project=host.project,
        actor=user,
        before={"image": image.id, "tags": image.tags},
        after={"tag": f"{repository}:{tag}"},
    )
    return f"{repository}:{tag}"
