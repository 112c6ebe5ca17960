"""A patch run's VM snapshot in vCenter (pyvmomi, as hosts.vsphere.tasks acts on VMs): taken
before a vSphere VM's host is patched, deleted once the change's success window has passed
(or at once when the host did not change or was rolled back), reverted to when the host
could not be put back by downgrading.

Each call opens its own session (a run takes minutes to hours between two of them) and waits
for the vSphere task with WaitForUpdatesEx, bounded by :data:`TIMEOUT`.
"""

from __future__ import annotations

from typing import Any

from pyVmomi import vim

from hosts.models import VirtualMachine
from hosts.vsphere import client as vsphere
from hosts.vsphere import faults as vsphere_faults
from hosts.vsphere.client import vm as vsphere_vm
from hosts.vsphere.task_wait import wait_for_task

#: Seconds a snapshot task may take before the portal stops waiting for it.
TIMEOUT = 600.0
#: What vCenter shows beside the snapshot.
DESCRIPTION = "Taken by Photon Portal before patching; deleted after the success window"


class SnapshotError(Exception):
    """A snapshot action that did not happen; the message is fit to show a person."""


def name_for(change_id: int) -> str:
    return f"portal-patch-{change_id}"


def _wait(si: vsphere.ServiceInstance, vtask: Any) -> None:
    """Until the vSphere task ends; its fault raised as TaskFault."""
    wait_for_task(si, vtask, TIMEOUT)


def _words(exc: BaseException) -> str:
    fault = vsphere_faults.fault_of(exc)
    return vsphere.describe_failure(exc) if fault is None else vsphere_faults.in_words(fault)


def take(vm_row: VirtualMachine, name: str) -> str:
    """Snapshot the VM (no memory, no quiescing: the guest keeps running); its moref."""
    try:
        with vsphere.session(vm_row.vcenter) as si:
            vm = vsphere_vm.ref(si, vm_row.moref)
            vtask = vm.CreateSnapshot_Task(name=name, description=DESCRIPTION, memory=False, quiesce=False)
            _wait(si, vtask)
            return str(vsphere_vm.moref_of(vtask.info.result))
    except Exception as exc:  # any failure stops the run; told in words
        raise SnapshotError(_words(exc)) from exc


def remove(vm_row: VirtualMachine, moref: str) -> None:
    """Delete the snapshot, keeping any taken after it (removeChildren False)."""
    try:
        with vsphere.session(vm_row.vcenter) as si:
            snapshot = vim.vm.Snapshot(moref, si._stub)
            _wait(si, snapshot.RemoveSnapshot_Task(removeChildren=False))
    except Exception as exc:  # kept for the watcher to try again; told in words
        raise SnapshotError(_words(exc)) from exc


def revert(vm_row: VirtualMachine, moref: str) -> None:
    """Put the VM back as it was at the snapshot. A snapshot without memory leaves the VM
    powered off: it is powered on again, as it was running when the snapshot was taken."""
    try:
        with vsphere.session(vm_row.vcenter) as si:
            snapshot = vim.vm.Snapshot(moref, si._stub)
            _wait(si, snapshot.RevertToSnapshot_Task())
            vm = vsphere_vm.ref(si, vm_row.moref)
            if vm.runtime.powerState != "poweredOn":
                _wait(si, vm.PowerOnVM_Task())
    except Exception as exc:  # the run stays failed, with this in its reason
        raise SnapshotError(_words(exc)) from exc
