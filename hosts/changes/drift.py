"""Drift: re-read the managed files of hosts with a profile and flag those that differ,
once on demand and periodically (a watcher).

A host is compared with a profile only once a change of that profile was applied there (or
found it already in place), and not since undone: a profile that was only planned, or
refused, says nothing of the host; an undo takes the host out of it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.db.models import Q, QuerySet
from django.template.loader import render_to_string

from hosts import ssh
from hosts.changes.desired import hosts_of
from hosts.changes.files import SettingsError
from hosts.changes.render import changed, paths_for, render_host
from hosts.changes.runs import sweep_interrupted
from hosts.fleet import status
from hosts.models import Host
from hosts.models.changes import (
    ChangeRun,
    Drift,
    DriftState,
    Profile,
    RunState,
)
from portal import events, live
from portal.models import Event

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _DriftInput:
    host_id: int
    profile_id: int
    access: ssh.Access
    settings: dict[str, Any]


async def _drift_one(item: _DriftInput) -> tuple[str, str]:
    try:
        async with ssh.connect(item.access) as conn, ssh.sftp_client(conn) as sftp:
            files = await ssh.read_files(sftp, paths_for(item.settings))
        entries, _facts = render_host(item.settings, files)
    except ssh.SSHError as exc:
        return DriftState.UNREACHABLE, str(exc)
    except SettingsError as exc:
        return DriftState.ERROR, str(exc)
    diff = "".join(e["diff"] for e in entries if changed(e))
    return (DriftState.DRIFTED, diff) if diff else (DriftState.IN_SYNC, "")


def in_place(host_ids: Collection[int]) -> set[tuple[int, int]]:
    """The (host, profile) pairs whose profile a change put in place on the host (or found in
    place), the latest word on the pair not being an undo of such a change."""
    runs = ChangeRun.objects.filter(host_id__in=host_ids).filter(
        Q(change__profile__isnull=False, state__in=(RunState.APPLIED, RunState.UNCHANGED))
        | Q(change__reverts__profile__isnull=False, state=RunState.APPLIED)
    )
    latest: dict[tuple[int, int], tuple[datetime, bool]] = {}
    for host, profile, undone, finished, planned in runs.values_list(
        "host_id", "change__profile_id", "change__reverts__profile_id", "finished", "change__created"
    ):
        # A host found already as wanted has no finish time: its plan's is the moment it was so.
        when, pair = finished or planned, (host, profile or undone)
        if pair not in latest or when > latest[pair][0]:
            latest[pair] = (when, profile is not None)
    return {pair for pair, (_when, placed) in latest.items() if placed}


def check_drift(hosts: Iterable[Host] | None = None) -> list[Drift]:
    """Re-read the managed files of each host whose profile is in place; flag those that differ."""
    wanted = {h.pk for h in hosts} if hosts is not None else None
    targeted = [
        (host, profile)
        for profile in Profile.objects.select_related("project")
        for host in hosts_of(profile)
        if wanted is None or host.pk in wanted
    ]
    placed = in_place({host.pk for host, _profile in targeted})
    items = [
        _DriftInput(host.pk, profile.pk, ssh.Access.of(host), dict(profile.settings))
        for host, profile in targeted
        if (host.pk, profile.pk) in placed
    ]
    # Rows of pairs no longer compared (undone, never applied, host taken out of the profile).
    kept = {(item.host_id, item.profile_id) for item in items}
    rows_before = Drift.objects.all() if wanted is None else Drift.objects.filter(host_id__in=wanted)
    stale = [
        pk
        for pk, host, profile in rows_before.values_list("pk", "host_id", "profile_id")
        if (host, profile) not in kept
    ]
    release(Drift.objects.filter(pk__in=stale))
    results = asyncio.run(ssh.bounded(items, _drift_one)) if items else []
    rows = []
    for item, (state, diff) in zip(items, results, strict=True):
        previous = Drift.objects.filter(host_id=item.host_id, profile_id=item.profile_id).first()
        row, _ = Drift.objects.update_or_create(
            host_id=item.host_id, profile_id=item.profile_id, defaults={"state": state, "diff": diff}
        )
        rows.append(row)
        if state == DriftState.DRIFTED and (previous is None or previous.state != DriftState.DRIFTED):
            events.notify(
                f"{row.host.name} drifted from profile {row.profile.name}",
                severity=Event.Severity.WARNING,
                obj=row.host,
                project=row.host.project_id,
                kind="drift.found",
            )
        _publish(row)
    return rows


def after_apply(run_id: int) -> None:
    """A host's run was just applied: settle its drift rows now rather than at the next check.
    Bringing a host back to its profile resolves the row; undoing a change of a profile takes
    the host out of it (the row goes)."""
    run = ChangeRun.objects.select_related("change__profile", "change__reverts__profile").get(pk=run_id)
    change = run.change
    if change.profile is not None and change.settings == change.profile.settings:
        # Written and verified as the profile (still) says: in sync, as a check would find it.
        for row in Drift.objects.filter(host_id=run.host_id, profile=change.profile).exclude(
            state=DriftState.IN_SYNC
        ):
            row.state, row.diff = DriftState.IN_SYNC, ""
            row.save(update_fields=["state", "diff", "checked"])
            _publish(row)
    undone = change.reverts.profile if change.reverts is not None else None
    if undone is not None and (run.host_id, undone.pk) not in in_place([run.host_id]):
        release(Drift.objects.filter(host_id=run.host_id, profile=undone))


def release(rows: QuerySet[Drift]) -> None:
    """Forget drift rows of hosts no longer in their profile; the list shows them out of it."""
    for row in rows.select_related("host", "profile"):
        _publish(row, released=True)
        row.delete()


def topic(project_id: int) -> str:
    """The live topic of a project's drift list (the changes page, the dashboard's card)."""
    return f"project:{project_id}:drift"


def host_topic(host: Host) -> str:
    """The news that a host's drift changed: its page reads its Configuration card again."""
    return f"{status.host_topic(host)}:drift"


def _publish(row: Drift, *, released: bool = False) -> None:
    live.publish(
        topic(row.host.project_id),
        html=render_to_string("hosts/changes/partials/drift_row.html", {"drift": row, "released": released}),
    )
    live.publish(host_topic(row.host), data={"profile": row.profile_id})


def _drift_pass(shard: Any) -> int:
    sweep_interrupted()
    hosts = [
        h
        for h in Host.objects.filter(Q(profiles__isnull=False) | Q(tags__profiles__isnull=False)).distinct()
        if shard.owns(h.pk)
    ]
    return len(check_drift(hosts)) if hosts else 0


async def watch_drift(shard: Any) -> None:
    """The periodic drift check (portal.watchers): this shard's hosts, every settings.DRIFT_INTERVAL."""
    while True:
        try:
            # Not a bare sync_to_async: this closes the thread's connection after each pass,
            # back to the pool, instead of an idle executor thread holding one for good.
            checked = await database_sync_to_async(_drift_pass, thread_sensitive=False)(shard)
            log.info("drift: checked %d host/profile pairs", checked)
        except Exception:
            log.exception("drift check failed")
        await asyncio.sleep(settings.DRIFT_INTERVAL)  # a schedule, not a wait on a condition
