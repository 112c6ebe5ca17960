"""The vCenter watcher: one ``WaitForUpdatesEx`` session per vCenter, applied live.

For each vCenter this process owns (its shard), a session: log in (pinned
certificate), make a property filter over every VM's changing properties, take
its first version, read the whole inventory once (so a reconnect resynchronises
fully), then wait for updates and apply each batch: re-read the VMs it names
(one round trip), upsert them, mark removed ones gone, and publish them. A
session that drops (vCenter restarted, network gone) is opened again with
backoff; the watcher never gives up on a vCenter while it is enabled.

pyvmomi blocks, so a session runs on a thread (``sync_to_async`` with
``thread_sensitive=False``: its live events go out through the caller's event
loop, which the in-memory channel layer needs under ``make run``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable

from asgiref.sync import sync_to_async
from django.db import connection
from pyVmomi import vim, vmodl

from hosts.models import VCenter
from hosts.vsphere import client as vsphere
from hosts.vsphere import sync as vsphere_sync
from hosts.watchers import Shard
from portal import events
from portal.models import Event

log = logging.getLogger(__name__)

#: Seconds between looks at which vCenters exist (added, removed, disabled).
RESCAN_SECONDS = 5.0
#: WaitForUpdatesEx waits at most this long on the server, so a stop is noticed soon.
MAX_WAIT_SECONDS = 5
BACKOFF_FIRST, BACKOFF_MAX = 1.0, 60.0

#: What changes on a VM that the portal shows; an update re-reads the whole VM.
WATCHED = ["name", "runtime.powerState", "runtime.host", "guest.ipAddress", "guest.hostName", "snapshot"]


async def watch_vcenters(shard: Shard) -> None:
    """Keep a session per enabled vCenter of ``shard``; runs until cancelled."""
    sessions: dict[int, asyncio.Task[None]] = {}
    try:
        while True:
            wanted = {pk for pk in await _enabled_vcenters() if shard.owns(pk)}
            for pk, task in list(sessions.items()):
                if task.done():  # its vCenter was disabled: start afresh if it is wanted again
                    del sessions[pk]
            for pk in wanted - set(sessions):
                sessions[pk] = asyncio.create_task(watch_vcenter(pk), name=f"vcenter-{pk}")
            for pk in set(sessions) - wanted:
                sessions.pop(pk).cancel()
            await asyncio.sleep(RESCAN_SECONDS)  # the next look at the configuration
    finally:
        for task in sessions.values():
            task.cancel()
        await asyncio.gather(*sessions.values(), return_exceptions=True)


@sync_to_async(thread_sensitive=False)
def _enabled_vcenters() -> list[int]:
    try:
        return list(VCenter.objects.filter(enabled=True).exclude(thumbprint="").values_list("pk", flat=True))
    finally:
        connection.close()  # this worker thread's own connection: not left open behind it


async def watch_vcenter(pk: int) -> None:
    """One vCenter, for as long as the watcher runs: sessions, reconnects, backoff."""
    delay = BACKOFF_FIRST
    failing = False
    while True:
        stop = threading.Event()
        connected = threading.Event()
        session = asyncio.ensure_future(
            sync_to_async(run_session, thread_sensitive=False)(pk, stop, connected.set)
        )
        try:
            # Shielded: asgiref lets a cancelled sync_to_async finish first, and the session
            # only finishes once told to stop.
            await asyncio.shield(session)
            return  # the vCenter was removed or disabled
        except asyncio.CancelledError:
            stop.set()
            with contextlib.suppress(BaseException):
                await session  # ends within MAX_WAIT_SECONDS
            raise
        except Exception as exc:  # noqa: BLE001 - any failure: report it, back off, connect again
            if connected.is_set():
                delay = BACKOFF_FIRST
            message = vsphere.describe_failure(exc)
            log.warning("vCenter %s: %s; connecting again in %.0fs", pk, message, delay)
            await sync_to_async(_record_failure, thread_sensitive=False)(pk, message, not failing)
            failing = True
        else:
            failing = False
        await asyncio.sleep(delay)  # backoff before reconnecting, not a wait for a condition
        delay = min(delay * 2, BACKOFF_MAX)


def _record_failure(pk: int, message: str, first: bool) -> None:
    try:
        vcenter = VCenter.objects.filter(pk=pk).first()
        if vcenter is None:
            return
        VCenter.objects.filter(pk=pk).update(connected=False, last_error=message)
        if first:
            events.notify(
                f"vCenter {vcenter.name} lost: {message}", severity=Event.Severity.WARNING, obj=vcenter
            )
    finally:
        connection.close()  # this worker thread's own connection: not left open behind it


def run_session(pk: int, stop: threading.Event, on_connected: Callable[[], None]) -> None:
    """Log in, resynchronise fully, then apply updates until ``stop`` or a failure."""
    try:
        vcenter = VCenter.objects.filter(pk=pk, enabled=True).first()
        if vcenter is None:
            return
        si = vsphere.connect(vcenter)
        try:
            _follow(vcenter, si, stop, on_connected)
        finally:
            vsphere.disconnect(si)
    finally:
        connection.close()  # this worker thread's own connection: not left open behind it


def _follow(
    vcenter: VCenter, si: vim.ServiceInstance, stop: threading.Event, on_connected: Callable[[], None]
) -> None:
    content = si.RetrieveContent()
    pc = content.propertyCollector.CreatePropertyCollector()
    views = content.viewManager
    assert views is not None  # every vCenter's ServiceContent has its ViewManager
    view = views.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    spec = vsphere_sync.container_filter(view, {vim.VirtualMachine: WATCHED})
    pc.CreateFilter(spec, True)
    # The first answer is the whole present state: only its version is needed, the
    # full sync below reads the rest. Changes after this version arrive as updates.
    first = vsphere.wait_for_updates(si, pc, "", 0)
    version = first[0] if first else ""
    result = vsphere_sync.sync(vcenter, si)
    vsphere_sync.announce(result.touched)
    was_down = bool(vcenter.last_error)
    VCenter.objects.filter(pk=vcenter.pk).update(
        connected=True, last_error="", version=content.about.fullName
    )
    if was_down:
        events.notify(f"vCenter {vcenter.name} connected again", obj=vcenter)
    on_connected()
    names = vsphere_sync.custom_field_names(content)
    while not stop.is_set():
        answer = vsphere.wait_for_updates(si, pc, version, MAX_WAIT_SECONDS)
        if answer is None:
            if not VCenter.objects.filter(pk=vcenter.pk, enabled=True).exists():
                return
            continue
        version, changes = answer
        apply_changes(vcenter, si, changes, names)
    with contextlib.suppress(vmodl.MethodFault, OSError):
        pc.DestroyPropertyCollector()


def apply_changes(
    vcenter: VCenter, si: vim.ServiceInstance, changes: list[vsphere.Change], names: dict[int, str]
) -> list[int]:
    """Apply one batch of updates; the ids of the VMs whose rows changed."""
    left = [c.ref.moref for c in changes if c.ref.type == "VirtualMachine" and c.kind == "leave"]
    present = [c.ref.moref for c in changes if c.ref.type == "VirtualMachine" and c.kind != "leave"]
    touched: list[int] = []
    if present:
        touched += vsphere_sync.apply_vm_properties(vcenter, vsphere_sync.read_vms(si, present), names)
    if left:
        touched += vsphere_sync.mark_gone(vcenter, left)
    vsphere_sync.announce(touched)
    return touched
