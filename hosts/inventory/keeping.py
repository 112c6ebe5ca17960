"""Keeping the inventory: the engines watcher calls these (hosts.registrations plugs them in),
each with the host and the watcher's open client to its engine.

- ``resync``: the host's whole engine, when its event stream (re)starts (what happened while it
  was down sent no event) and every few minutes after (hosts.fleet.watch.RESYNC_EVERY);
- ``on_container``: a container changed (its summary, or None once it is gone);
- ``on_event``: an image or a volume came or went: that kind is read again (one call).

Events and snapshots run on different threads, so a snapshot is written with the time it began
reading the engine, and a row written since then (by an event, which read the engine later) is
left as it is. A removed container stays as a "removed" row until the next snapshot: a snapshot
that read the engine before the removal would otherwise bring it back until the one after."""

from __future__ import annotations

import datetime
import logging
from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.utils import timezone

from hosts.fleet import containers as engine_containers
from hosts.inventory import reading
from hosts.models import EngineObject, Host

log = logging.getLogger(__name__)

#: A container's row once an event said it was removed (never found by a search).
REMOVED = "removed"
#: The events after which the engine's list of that kind is read again ("mount" and "unmount",
#: sent at every container start and stop, change no volume).
KIND_ACTIONS = {
    reading.IMAGE: frozenset({"pull", "tag", "untag", "delete", "import", "load"}),
    reading.VOLUME: frozenset({"create", "destroy", "prune"}),
}
_VALUES = ("name", "image", "state", "labels", "ports", "haystack")


def resync(host: Host, sdk: Any) -> None:
    snapshot(host, sdk, reading.KINDS)


def snapshot(host: Host, sdk: Any, kinds: Iterable[str]) -> None:
    """Read ``kinds`` from the engine and make the host's rows of those kinds say the same."""
    started = timezone.now()
    store(host, reading.read(sdk, kinds), started)


def store(host: Host, found: dict[str, list[reading.Seen]], started: datetime.datetime) -> None:
    """Write one read of the engine, begun at ``started``: new objects added, changed ones
    updated, those no longer there deleted; a row written after ``started`` is newer, kept."""
    with transaction.atomic():
        # Locked: an event that writes one of these rows waits for this snapshot, then wins.
        rows = EngineObject.objects.select_for_update().filter(host=host, kind__in=list(found))
        existing = {(row.kind, row.engine_id): row for row in rows}
        added: list[EngineObject] = []
        changed: list[EngineObject] = []
        for kind, seen in found.items():
            for item in seen:
                values = item.fields()
                row = existing.pop((kind, item.engine_id), None)
                if row is None:
                    added.append(
                        EngineObject(
                            host=host, kind=kind, engine_id=item.engine_id, updated=started, **values
                        )
                    )
                elif row.updated <= started and any(getattr(row, k) != v for k, v in values.items()):
                    for key, value in values.items():
                        setattr(row, key, value)
                    row.updated = started
                    changed.append(row)
        gone = [row.pk for row in existing.values() if row.updated <= started]
        if gone:
            EngineObject.objects.filter(pk__in=gone).delete()
        # ignore_conflicts: an event may have added the same object since the rows were read.
        EngineObject.objects.bulk_create(added, ignore_conflicts=True)
        EngineObject.objects.bulk_update(changed, [*_VALUES, "updated"])


def on_container(
    host: Host, container_id: str, summary: engine_containers.ContainerSummary | None, sdk: Any
) -> None:
    """A container's row as the engine now reports it; marked removed when it is gone."""
    now = timezone.now()
    if summary is None:
        rows = EngineObject.objects.filter(host=host, kind=reading.CONTAINER)
        # The id as the engine's event gives it (64 hex digits) or as a page asked (12 or more).
        mine = (
            rows.filter(engine_id=container_id)
            if len(container_id) == 64
            else rows.filter(engine_id__startswith=container_id)
        )
        mine.exclude(state=REMOVED).update(state=REMOVED, updated=now)
        return
    item = reading.from_container(summary)
    row = EngineObject(host=host, kind=item.kind, engine_id=item.engine_id, updated=now, **item.fields())
    # One statement, so an event and a snapshot adding the same container cannot collide.
    EngineObject.objects.bulk_create(
        [row],
        update_conflicts=True,
        unique_fields=["host", "kind", "engine_id"],
        update_fields=[*_VALUES, "updated"],
    )


def on_event(host: Host, event: dict[str, Any], sdk: Any) -> None:
    """An image or a volume event: the engine's list of that kind again."""
    kind = event.get("Type", "")
    action = str(event.get("Action", "")).split(":")[0]
    if action in KIND_ACTIONS.get(kind, ()):
        snapshot(host, sdk, (kind,))
