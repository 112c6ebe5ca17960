"""The watcher keeps the database and the browsers current from WaitForUpdatesEx, and heals
itself when vCenter restarts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from channels.layers import get_channel_layer
from pyVim.task import WaitForTask

from hosts.models import VCenter, VirtualMachine
from hosts.vsphere import client as vsphere
from hosts.vsphere import watch as vsphere_watch
from portal.live import group_name
from portal.models import Event
from portal.watchers import WATCHERS, Shard
from tests.lab import vcenter
from tests.lab.fixtures import start
from tests.threads import orm_in_thread
from tests.vsphere.conftest import add_vcenter, find_vm

pytestmark = pytest.mark.django_db(transaction=True)


async def until(predicate: Callable[[], Any], *, timeout: float, what: str) -> Any:
    """Poll a database condition from async code until it holds, or fail after ``timeout``."""

    deadline = time.monotonic() + timeout
    while True:
        result = await orm_in_thread(predicate)
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(0.05)


async def next_event(
    channel: str, wanted: Callable[[dict[str, Any]], bool], timeout: float
) -> dict[str, Any]:
    layer = get_channel_layer()

    async def receive() -> dict[str, Any]:
        while True:
            message = await layer.receive(channel)
            if wanted(message.get("data") or {}):
                return message

    return await asyncio.wait_for(receive(), timeout)


def test_the_watcher_is_registered() -> None:
    assert "vcenters" in WATCHERS


def test_a_power_change_outside_the_portal_reaches_database_and_subscribers(lab_vcenter, outside) -> None:
    vc = add_vcenter(lab_vcenter)
    target = "DC0_C0_RP0_VM0"  # not a Photon VM: the Photon fleet's state is other tests' ground
    vm = find_vm(outside, target)

    async def scenario() -> dict[str, Any]:
        layer = get_channel_layer()
        channel = await layer.new_channel()
        await layer.group_add(group_name("vsphere:all"), channel)
        watcher = asyncio.create_task(vsphere_watch.watch_vcenters(Shard()))
        try:
            await until(
                lambda: (
                    VCenter.objects.get(pk=vc.pk).connected
                    and VirtualMachine.objects.filter(vcenter=vc).count() == lab_vcenter["vms"]
                ),
                timeout=30,
                what="the first sync",
            )
            await asyncio.to_thread(lambda: WaitForTask(vm.PowerOffVM_Task()))
            message = await next_event(
                channel, lambda d: d.get("moref") == vm._moId and d.get("power_state") == "poweredOff", 10
            )
            await asyncio.to_thread(lambda: WaitForTask(vm.PowerOnVM_Task()))
            await next_event(
                channel, lambda d: d.get("moref") == vm._moId and d.get("power_state") == "poweredOn", 10
            )
            return message
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
            await layer.group_discard(group_name("vsphere:all"), channel)

    message = asyncio.run(scenario())
    row = VirtualMachine.objects.get(vcenter=vc, moref=vm._moId)
    assert row.power_state == "poweredOn"
    assert f'id="vm-row-{row.pk}"' in message["html"] and 'data-power="poweredOff"' in message["html"]


def test_the_watcher_recovers_from_a_vcenter_restart_without_duplicates(tmp_path: Path) -> None:
    info = start(lambda: vcenter.up(tmp_path, vms=10, photon_share=0.5))
    try:
        vc = add_vcenter(info)

        async def scenario() -> None:
            watcher = asyncio.create_task(vsphere_watch.watch_vcenters(Shard()))
            try:
                await until(
                    lambda: VirtualMachine.objects.filter(vcenter=vc).count() == info["vms"],
                    timeout=30,
                    what="the first sync",
                )
                await asyncio.to_thread(vcenter.restart, tmp_path)
                await until(
                    lambda: Event.objects.filter(message__contains="lost").exists(),
                    timeout=30,
                    what="the watcher to notice",
                )
                await until(
                    lambda: VCenter.objects.filter(pk=vc.pk, connected=True, last_error="").exists(),
                    timeout=60,
                    what="the watcher to reconnect",
                )
                # Live again: a change after the restart arrives.
                si = await asyncio.to_thread(vsphere.connect, vc)
                try:
                    moref = await orm_in_thread(
                        lambda: (
                            VirtualMachine.objects.filter(vcenter=vc, power_state="poweredOn")
                            .values_list("moref", flat=True)
                            .first()
                        )
                    )
                    from pyVmomi import vim

                    await asyncio.to_thread(
                        lambda: WaitForTask(vim.VirtualMachine(moref, si._stub).PowerOffVM_Task())
                    )
                    await until(
                        lambda: (
                            VirtualMachine.objects.get(vcenter=vc, moref=moref).power_state == "poweredOff"
                        ),
                        timeout=10,
                        what="the power change after the restart",
                    )
                finally:
                    await asyncio.to_thread(vsphere.disconnect, si)
            finally:
                watcher.cancel()
                await asyncio.gather(watcher, return_exceptions=True)

        asyncio.run(scenario())
        morefs = list(VirtualMachine.objects.filter(vcenter=vc).values_list("moref", flat=True))
        assert len(morefs) == len(set(morefs)) == info["vms"]
        assert not VirtualMachine.objects.filter(vcenter=vc, gone=True).exists()
        assert Event.objects.filter(message__contains="connected again").exists()
    finally:
        vcenter.down(tmp_path)
