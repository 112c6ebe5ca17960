"""Background work on vCenters: full syncs, and power and snapshot actions on VMs.

An action is a ``VmTask`` row (the truth) that a Celery task carries out as a
vSphere task: its progress and result are written to the row, published live to
the VM's page and recorded in the audit trail. Afterwards the VM is re-read,
because vcsim (like some vCenters) sends no update for some of its own changes.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from celery import shared_task
from django.template.loader import render_to_string
from django.utils import timezone

from hosts.models import VCenter, VirtualMachine, VmTask
from hosts.vsphere import announce as vsphere_announce
from hosts.vsphere import client as vsphere
from hosts.vsphere import faults as vsphere_faults
from hosts.vsphere import sync as vsphere_sync
from hosts.vsphere import work
from hosts.vsphere.client import inventory as vsphere_inventory
from hosts.vsphere.client import vm as vsphere_vm
from hosts.vsphere.task_wait import wait_for_task
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
#: Why an action found "running" by its redelivered message (or the sweep) failed.
WORKER_STOPPED = "the worker stopped while this was running; check the VM and try again"


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
    vsphere_announce.announce(result.touched)
    return {"vms": result.vms, "created": len(result.created), "gone": len(result.gone)}


def topics_for(task: VmTask) -> list[str]:
    return vsphere_announce.topics_for(task.vm)[1]


def publish_task(task: VmTask) -> None:
    html = render_to_string("hosts/vsphere/partials/vm_task.html", {"task": task})
    data = {"task": task.pk, "state": task.state, "progress": task.progress, "action": task.action}
    for topic in topics_for(task):
        live.publish(topic, html=html, data=data)
    work.publish(task)  # the requester's My work


def _save(task: VmTask, **fields: Any) -> None:
    for name, value in fields.items():
        setattr(task, name, value)
    task.save(update_fields=list(fields))
    publish_task(task)


def _follow(si: vsphere.ServiceInstance, vtask: Any, task: VmTask) -> None:
    """Wait for the vSphere task, publishing its progress as it moves."""

    def moved(progress: int) -> None:
        if progress != task.progress:
            _save(task, progress=progress)

    wait_for_task(si, vtask, ACTION_TIMEOUT, moved)


def not_run(task: VmTask, message: str) -> bool:
    """End ``task`` as failed with ``message`` unless it has ended already (it was never
    queued, or its worker died): told live, and audited as the action's failure."""
    ended = VmTask.objects.filter(pk=task.pk, state__in=[VmTask.State.QUEUED, VmTask.State.RUNNING]).update(
        state=VmTask.State.ERROR, error=message, finished=timezone.now()
    )
    task.refresh_from_db()
    if not ended:
        return False
    publish_task(task)
    vm_row = task.vm
    audit.record(
        f"vm.{task.action}.failed",
        obj=vm_row,
        project=vm_row.host.project if vm_row.host is not None else None,
        actor=task.actor,
        after={"task": task.pk, "error": message, "argument": task.argument},
    )
    return True


@shared_task(name="hosts.vsphere_vm_action")
def run_vm_action(task_id: int) -> str:
    # Claimed once: of two deliveries of one message, one runs the action.
    claimed = VmTask.objects.filter(pk=task_id, state=VmTask.State.QUEUED).update(state=VmTask.State.RUNNING)
    task = VmTask.objects.select_related("vm__vcenter", "vm__host", "actor").get(pk=task_id)
    if not claimed:
        if task.state == VmTask.State.RUNNING:
            # Redelivered (acks_late) because the worker running it died: what it did to
            # the VM is unknown, so it is not run blind a second time.
            not_run(task, WORKER_STOPPED)
        return task.state  # done already: a redelivery runs nothing twice
    vm_row = task.vm
    publish_task(task)
    project = vm_row.host.project if vm_row.host is not None else None
    try:
        with vsphere.session(vm_row.vcenter) as si:
            try:
                vm = vsphere_vm.ref(si, vm_row.moref)
                vtask = vsphere_vm.start_action(vm, task)
                if vtask is not None:
                    _save(task, vsphere_task=vsphere_vm.moref_of(vtask))
                    _follow(si, vtask, task)
            except (vsphere.MethodFault, vsphere_faults.TaskFault):
                # vCenter refused: the VM is not as the portal thought, so the page must learn
                # how it is (a failure to read it must not hide the refusal).
                with contextlib.suppress(Exception):
                    _reread(si, vm_row)
                raise
            _reread(si, vm_row)
    except Exception as exc:  # noqa: BLE001 - any failure is the task's result, shown to the person
        fault = vsphere_faults.fault_of(exc)
        if fault is None:
            message = vsphere.describe_failure(exc)
        else:
            # The fault's own name and text are for whoever reads the log, not the person.
            log.warning("%s on %s failed with vSphere fault %s", task.action, vm_row.moref, fault)
            message = vsphere_faults.in_words(fault)
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


def _reread(si: vsphere.ServiceInstance, vm_row: VirtualMachine) -> None:
    """Apply the VM's current properties now, not when (or if) an update arrives."""
    found = vsphere_inventory.read_vms(si, [vm_row.moref])
    if vm_row.moref in found:
        names = vsphere_inventory.field_names(si)
        if vsphere_sync.apply_vm_properties(vm_row.vcenter, {vm_row.moref: found[vm_row.moref]}, names):
            vsphere_announce.announce([vm_row.pk])
