"""What people ask of vSphere, for the UI and the API alike: read a vCenter again, a power
or snapshot action on a VM. Each checks, records and queues, or raises ``Refused`` with the
sentence both show."""

from __future__ import annotations

import json
import re
from typing import Any, NamedTuple

from hosts.models import VCenter, VirtualMachine, VmTask
from hosts.models.vsphere import PowerState
from hosts.vsphere import tasks
from portal.queueing import enqueue
from portal.refused import Refused

SNAPSHOT_NAME = re.compile(r"^[^\x00-\x1f<>]{1,80}$")


class NeedsConfirmation(Refused):
    """A destructive action asked without its confirmation: the UI asks, the API says so."""

    def __init__(self, label: str, argument: str) -> None:
        super().__init__(f"{label} needs confirm: true.", field="confirm", status=400)
        self.label = label
        self.argument = argument


class Pointless(NamedTuple):
    """Why an action cannot work in a power state: ``title`` on its disabled button,
    ``sentence`` (``{vm}`` the VM's name) in the refusal the UI and the API show."""

    title: str
    sentence: str


_ALREADY_OFF = Pointless("Already powered off", "{vm} is already powered off.")

#: action -> power state -> why vCenter would only answer InvalidPowerState. Powering on a
#: suspended VM resumes it and powering it off discards its suspended state: both work.
POINTLESS: dict[str, dict[str, Pointless]] = {
    "power_on": {PowerState.ON: Pointless("Already powered on", "{vm} is already powered on.")},
    "power_off": {PowerState.OFF: _ALREADY_OFF},
    "reset": {
        PowerState.OFF: Pointless(
            "Powered off: nothing to reset",
            "{vm} is powered off: there is nothing to reset; power it on instead.",
        ),
        PowerState.SUSPENDED: Pointless(
            "Suspended: nothing to reset",
            "{vm} is suspended: there is nothing to reset; power it on instead.",
        ),
    },
    "shutdown_guest": {
        PowerState.OFF: _ALREADY_OFF,
        PowerState.SUSPENDED: Pointless(
            "Suspended: no guest running",
            "{vm} is suspended: its guest cannot shut down; power it on or off instead.",
        ),
    },
}


def pointless(vm: VirtualMachine, action: str) -> Pointless | None:
    """Why ``action`` cannot work on ``vm`` in its last known power state; None when it may
    (an unknown state refuses nothing: vCenter decides, and a fault there is told in words)."""
    return POINTLESS.get(action, {}).get(vm.power_state)


def request_vm_action(
    vm: VirtualMachine, user: Any, action: str, argument: str, *, confirmed: bool
) -> VmTask:
    """Queue ``action`` on ``vm`` as a vSphere task followed live; refuse what cannot be done."""
    if action not in tasks.ACTIONS:
        raise Refused("Unknown action.", field="action", status=400)
    label, destructive = tasks.ACTIONS[action]
    if vm.gone:
        raise Refused("This VM is gone from vCenter.")
    why = pointless(vm, action)
    if why is not None:
        raise Refused(why.sentence.format(vm=vm.name))
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
    enqueue(tasks.run_vm_action, task.pk, unqueued=lambda message: tasks.not_run(task, message))
    return task


def request_sync(vcenter: VCenter) -> str:
    """Read ``vcenter``'s inventory again, in a task; returns what to tell the person."""
    enqueue(tasks.sync_vcenter, vcenter.pk)
    return f"Reading {vcenter.name}."


def action_buttons(vm: VirtualMachine) -> list[dict[str, str]]:
    """The page's action buttons: each one's action, label, why it cannot work now ("" when
    it can) and, for static/hosts/vsphere.js to follow live power changes, the power
    states it cannot work in with why (JSON)."""
    shown = []
    for action, (label, _) in tasks.ACTIONS.items():
        if action == "snapshot_revert":
            continue  # its own form, beside the snapshots to choose from
        why = pointless(vm, action)
        states = {state: p.title for state, p in POINTLESS.get(action, {}).items()}
        shown.append(
            {
                "name": action,
                "label": label,
                "why": why.title if why is not None else "",
                "pointless": json.dumps(states) if states else "",
            }
        )
    return shown
