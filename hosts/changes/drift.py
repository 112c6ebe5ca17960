"""Drift: re-read the managed files of hosts with a profile and flag those that differ,
once on demand and periodically (a watcher)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db.models import Q
from django.template.loader import render_to_string

from hosts import ssh
from hosts.changes.desired import hosts_of
from hosts.changes.files import SettingsError
from hosts.changes.render import changed, paths_for, render_host
from hosts.changes.runs import sweep_interrupted
from hosts.models import Host
from hosts.models.changes import (
    Drift,
    DriftState,
    Profile,
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


def check_drift(hosts: Iterable[Host] | None = None) -> list[Drift]:
    """Re-read the managed files of each host that has a profile; flag those that differ."""
    items = []
    wanted = {h.pk for h in hosts} if hosts is not None else None
    for profile in Profile.objects.select_related("project"):
        for host in hosts_of(profile):
            if wanted is None or host.pk in wanted:
                items.append(_DriftInput(host.pk, profile.pk, ssh.Access.of(host), dict(profile.settings)))
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
            )
        live.publish(
            f"project:{row.host.project_id}:drift",
            html=render_to_string("hosts/changes/partials/drift_row.html", {"drift": row}),
        )
    return rows


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
            checked = await sync_to_async(_drift_pass, thread_sensitive=False)(shard)
            log.info("drift: checked %d host/profile pairs", checked)
        except Exception:
            log.exception("drift check failed")
        await asyncio.sleep(settings.DRIFT_INTERVAL)  # a schedule, not a wait on a condition
