"""Background work on vCenters: full syncs, and power and snapshot actions on VMs.

An action is a ``VmTask`` row (the truth) that a Celery task carries out as a
vSphere task: its progress and result are written to the row, published live to
the VM's page and recorded in the audit trail. Afterwards the VM is re-read,
because vcsim (like some vCenters) sends no update for some of its own changes.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import shared_task
from django.template.loader import render_to_string
from django.utils import timezone
from pyVmomi import vim, vmodl

from hosts.models import VCenter, VirtualMachine, VmTask
from hosts.vsphere import client as vsphere
from hosts.vsphere import sync as vsphere_sync
from portal import audit, live

log = logging.getLogger(__name__)

#: action -> (label, destructive). Destructive actions are confirmed before they run.
ACTIONS: dict[str, tuple[str, bool]] = {
    "power_on": ("Power on", False),
    "power_off": ("Power off", True),
    "reset": ("Reset", True),
    "shutdown_guest": ("Shut down guest", True),
    "snapshot_create": ("Take snapshot", False),
    "snapshot_revert": ("Revert to snapshot", True),
}
#: How long an action may take before the portal stops waiting for it.
ACTION_TIMEOUT = 300.0


@shared_task(name="hosts.vsphere_sync")
def sync_vcenter(vcenter_id: int) -> dict[str, int]:
    """Read one vCenter fully and tell the browsers what changed."""
    vcenter = VCenter.objects.get(pk=vcenter_id)
    try:
        with vsphere.session(vcenter) as si:
            result = vsphere_sync.sync(vcenter, si)
    except Exception as exc:
        error = vsphere.describe_failure(exc)
        VCenter.objects.filter(pk=vcenter.pk).update(connected=False, last_error=error)
        raise
    vsphere_sync.announce(result.touched)
    return {"vms": result.vms, "created": len(result.created), "gone": len(result.gone)}


def topics_for(task: VmTask) -> list[str]:
    return vsphere_sync.topics_for(task.vm)[1]


def publish_task(task: VmTask) -> None:
    html = render_to_string("hosts/vsphere/partials/vm_task.html", {"task": task})
    data = {"task": task.pk, "state": task.state, "progress": task.progress, "action": task.action}
    for topic in topics_for(task):
        live.publish(topic, html=html, data=data)
    from portal import work_views  # the requester's My work

    work_views.publish_vm_task(task)


def _save(task: VmTask, **fields: Any) -> None:
    for name, value in fields.items():
        setattr(task, name, value)
    task.save(update_fields=list(fields))
    publish_task(task)


def _start(vm: vim.VirtualMachine, task: VmTask) -> vim.Task | None:
    """Start the vSphere side of ``task``; None for ShutdownGuest, which is no task."""
    if task.action == "power_on":
        return vm.PowerOnVM_Task()
    if task.action == "power_off":
        return vm.PowerOffVM_Task()
    if task.action == "reset":
        return vm.ResetVM_Task()
    if task.action == "shutdown_guest":
        vm.ShutdownGuest()
        return None
    if task.action == "snapshot_create":
        return vm.CreateSnapshot_Task(
            name=task.argument, description="Taken from Photon Portal", memory=False, quiesce=False
        )
    if task.action == "snapshot_revert":
        snapshot = vim.vm.Snapshot(task.argument, vm._stub)
        return snapshot.RevertToSnapshot_Task()
    raise ValueError(f"unknown action {task.action!r}")


def _follow(si: vim.ServiceInstance, vtask: vim.Task, task: VmTask) -> None:
    """Wait for the vSphere task with WaitForUpdatesEx on its info, publishing progress."""
    pc = si.content.propertyCollector.CreatePropertyCollector()
    PC = vmodl.query.PropertyCollector
    spec = PC.FilterSpec(
        objectSet=[PC.ObjectSpec(obj=vtask)],
        propSet=[PC.PropertySpec(type=vim.Task, pathSet=["info.state", "info.progress", "info.error"])],
    )
    pc.CreateFilter(spec, True)
    version = ""
    deadline = time.monotonic() + ACTION_TIMEOUT
    try:
        while time.monotonic() < deadline:
            answer = vsphere.wait_for_updates(si, pc, version, 10)
            if answer is None:
                continue
            version, changes = answer
            for change in changes:
                props = change.changes
                progress = props.get("info.progress")
                if isinstance(progress, int) and progress != task.progress:
                    _save(task, progress=progress)
                state = props.get("info.state")
                if state == "success":
                    return
                if state == "error":
                    error = props.get("info.error") or {}
                    message = error.get("localizedMessage") if isinstance(error, dict) else None
                    raise RuntimeError(message or "vCenter reported the task failed")
        raise TimeoutError(f"the vSphere task did not finish within {ACTION_TIMEOUT:.0f} s")
    finally:
        try:
            pc.DestroyPropertyCollector()
        except Exception:
            log.debug("could not destroy a property collector", exc_info=True)


@shared_task(name="hosts.vsphere_vm_action")
def run_vm_action(task_id: int) -> str:
    task = VmTask.objects.select_related("vm__vcenter", "vm__host", "actor").get(pk=task_id)
    if task.state != VmTask.State.QUEUED:
        return task.state  # a redelivered message: the action ran (or is running) already
    vm_row = task.vm
    _save(task, state=VmTask.State.RUNNING)
    project = vm_row.host.project if vm_row.host is not None else None
    try:
        with vsphere.session(vm_row.vcenter) as si:
            vm = vim.VirtualMachine(vm_row.moref, si._stub)
            vtask = _start(vm, task)
            if vtask is not None:
                _save(task, vsphere_task=vtask._moId)
                _follow(si, vtask, task)
            _reread(si, vm_row)
    except Exception as exc:  # noqa: BLE001 - any failure is the task's result, shown to the person
        message = vsphere.describe_failure(exc)
        _save(task, state=VmTask.State.ERROR, error=message, finished=timezone.now())
        audit.record(
            f"vm.{task.action}.failed",
            obj=vm_row,
            project=project,
            actor=task.actor,
            after={"task": task.pk, "error": message, "argument": task.argument},
        )
        return task.state
    _save(task, state=VmTask.State.SUCCESS, progress=100, finished=timezone.now())
    audit.record(
        f"vm.{task.action}",
        obj=vm_row,
        project=project,
        actor=task.actor,
        after={"task": task.pk, "vsphere_task": task.vsphere_task, "argument": task.argument},
    )
    return task.state


def _reread(si: vim.ServiceInstance, vm_row: VirtualMachine) -> None:
    """Apply the VM's current properties now, not when (or if) an update arrives."""
    found = vsphere_sync.read_vms(si, [vm_row.moref])
    if vm_row.moref in found:
        names = vsphere_sync.custom_field_names(si.RetrieveContent())
        if vsphere_sync.apply_vm_properties(vm_row.vcenter, {vm_row.moref: found[vm_row.moref]}, names):
            vsphere_sync.announce([vm_row.pk])
