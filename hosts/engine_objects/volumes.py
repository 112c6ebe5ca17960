"""A host's volumes: created with the local driver (memory or a remote share, never the host's
own files: a container given such a volume would hold the host), removed when unused and no
application's, pruned as the confirmation listed."""

from __future__ import annotations

from typing import Any

import docker.errors

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
from portal import audit
from portal.refused import Refused

#: The local driver's filesystem types a volume may have: memory, or a remote share. Not
#: ``none`` with ``o=bind`` (the host's own directory).
LOCAL_TYPES = frozenset({"tmpfs", "nfs", "nfs4", "cifs"})


def check_volume_options(options: dict[str, str]) -> None:
    """Refuse local driver options that would bind a directory of the host into a volume."""
    unknown = sorted(set(options) - {"type", "o", "device"})
    if unknown:
        raise Refused(f"The local driver takes type, o and device, not {unknown[0]!r}.", field="options")
    kind = options.get("type", "")
    if options and kind not in LOCAL_TYPES:
        raise Refused(
            f"type={kind or '(none)'} is not offered: a volume of the host's own files would give its "
            f"containers the host. Choose one of {', '.join(sorted(LOCAL_TYPES))}.",
            field="options",
        )
    flags = {flag.strip().split("=", 1)[0] for flag in options.get("o", "").split(",")}
    if flags & {"bind", "rbind"}:
        raise Refused("o=bind is not offered: it would mount the host's own files.", field="options")


def create_volume(user: Any, host: Host, name: str, options: dict[str, str], labels: dict[str, str]) -> str:
    check_operable(user, host)
    name = valid_name(name, "volume")
    check_volume_options(options)
    with engine_of(host) as sdk:
        if any(v["Name"] == name for v in sdk.api.volumes(filters={"name": name}).get("Volumes") or ()):
            # The engine would hand back the existing volume: say so rather than claim it made one.
            raise Refused(f"{host} has a volume named {name} already.", field="name", status=409)
        sdk.api.create_volume(name, driver="local", driver_opts=options or None, labels=labels or None)
    audit.record(
        "volume.create",
        obj=host,
        project=host.project,
        actor=user,
        # The options' names and type only: a CIFS share's o= holds its password.
        after={"volume": name, "type": options.get("type", ""), "options": sorted(options), "labels": labels},
    )
    return name


def remove_volume(user: Any, host: Host, name: str) -> None:
    check_operable(user, host)
    with engine_of(host) as sdk:
        volume = find(
            reading.read(sdk, kinds=("volumes",)).volumes, lambda v: v.name == name, f"volume {name}", host
        )
        removable(host, volume.labels, volume.used_by, f"volume {name}")
        sdk.api.remove_volume(name)  # the engine refuses too, should a container take it meanwhile
    audit.record("volume.remove", obj=host, project=host.project, actor=user, before={"volume": name})


def prunable_volumes(holdings: reading.Holdings, host: Host) -> list[reading.Volume]:
    """What a volume prune would remove: unused, and no application's."""
    apps = application_names(host)
    return [v for v in holdings.volumes if not v.used_by and not owner_of(v.labels, apps)]


def prune_volumes(user: Any, host: Host, names: list[str]) -> Pruned:
    """Remove the volumes ``names`` (what the confirmation listed) that are still prunable."""
    check_operable(user, host)
    done = Pruned()
    with engine_of(host) as sdk:
        now = {v.name: v for v in prunable_volumes(reading.read(sdk, sizes=True, kinds=("volumes",)), host)}
        for name in names:
            volume = now.get(name)
            if volume is None:
                done.kept.append(f"{name}: in use, an application's, or gone since the confirmation")
                continue
            try:
                sdk.api.remove_volume(name)
            except docker.errors.APIError as exc:
                done.kept.append(f"{name}: {exc.explanation or exc}")
                continue
            done.removed.append(name)
            done.freed += volume.size or 0
    audit.record(
        "volume.prune",
        obj=host,
        project=host.project,
        actor=user,
        after={"removed": done.removed, "kept": done.kept, "freed": done.freed},
    )
    return done
