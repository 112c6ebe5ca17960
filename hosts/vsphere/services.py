"""What people ask of vSphere, for the UI and the API alike: read a vCenter again, a power
or snapshot action on a VM. Each checks, records and queues, or raises ``Refused`` with the
sentence both show."""

from __future__ import annotations

import re
from typing import Any

from hosts.models import VCenter, VirtualMachine, VmTask
from hosts.vsphere import tasks
from portal.refused import Refused

SNAPSHOT_NAME = re.compile(r"^[^\x00-\x1f<>]{1,80}$")


class NeedsConfirmation(Refused):
    """A destructive action asked without its confirmation: the UI asks, the API says so."""

    def __init__(self, label: str, argument: str) -> None:
        super().__init__(f"{label} needs confirm: true.", field="confirm", status=400)
        self.label = label
        self.argument = argument


def request_vm_action(
    vm: VirtualMachine, user: Any, action: str, argument: str, *, confirmed: bool
) -> VmTask:
    """Queue ``action`` on ``vm`` as a vSphere task followed live; refuse what cannot be done."""
    if action not in tasks.ACTIONS:
        raise Refused("Unknown action.", field="action", status=400)
    label, destructive = tasks.ACTIONS[action]
    if vm.gone:
        raise Refused("This VM is gone from vCenter.")
    argument = argument.strip()
    if action == "snapshot_create":
        argument = argument or f"portal-{vm.tasks.count() + 1}"
        if not SNAPSHOT_NAME.match(argument):
            raise Refused(
                "A snapshot name is 1 to 80 characters, without < > or control characters.",
                field="argument",
                status=400,
            )
    elif action == "snapshot_revert":
        if argument not in {s["moref"] for s in vm.snapshots}:
            raise Refused("No such snapshot.", field="argument", status=400)
    else:
        argument = ""
    if destructive and not confirmed:
        raise NeedsConfirmation(label, argument)
    task = VmTask.objects.create(vm=vm, action=action, argument=argument, actor=user)
    tasks.publish_task(task)
    tasks.run_vm_action.delay(task.pk)
    return task


def request_sync(vcenter: VCenter) -> str:
    """Read ``vcenter``'s inventory again, in a task; returns what to tell the person."""
    tasks.sync_vcenter.delay(vcenter.pk)
    return f"Reading {vcenter.name}."
