"""Celery tasks for provisioning: thin, the work is in hosts.provision.flow and guestinfo."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from celery import shared_task

from hosts.models import ProvisionedVm, ProvisionRequest
from hosts.provision import flow
from hosts.provision.vm_state import set_state
from hosts.vsphere import client as vsphere

#: Why a VM found cloning by its request's redelivered message (or the sweep) failed.
WORKER_STOPPED = (
    "the worker stopped while this was running; check the VM in vCenter (delete it here if it was made) "
    "and try again"
)


def fail_unfinished(
    request: ProvisionRequest, reason: str, states: Iterable[str], *, updated_before: Any = None
) -> list[int]:
    """Fail the VMs of ``request`` still in one of ``states`` (and not updated since
    ``updated_before``) with ``reason``, each only if it is still so: it may move on
    meanwhile; the ids failed."""
    failed: list[int] = []
    vms = request.vms.filter(state__in=list(states))
    if updated_before is not None:
        vms = vms.filter(updated__lt=updated_before)
    for pvm in vms:
        if ProvisionedVm.objects.filter(pk=pvm.pk, state=pvm.state).update(state=ProvisionedVm.State.FAILED):
            set_state(pvm, ProvisionedVm.State.FAILED, reason[:1].upper() + reason[1:] + ".")
            failed.append(pvm.pk)
    return failed


@shared_task(name="hosts.provision_request", ignore_result=True)
def run_request(request_id: int, enroll_base_url: str) -> None:
    request = ProvisionRequest.objects.select_related("vcenter", "project").get(pk=request_id)
    # Its VMs are cloned one after another by one task: a VM still "cloning" when this
    # message arrives was left by a worker that died (the message came back, acks_late),
    # and what vCenter made of it is unknown, so it is not cloned again blind.
    fail_unfinished(request, WORKER_STOPPED, (ProvisionedVm.State.CLONING,))
    pending = list(request.vms.filter(state=ProvisionedVm.State.QUEUED))
    if not pending or request.vcenter is None:
        return
    try:
        with vsphere.session(request.vcenter) as si:
            for pvm in pending:
                flow.clone(pvm, si, enroll_base_url)
    except vsphere.VSphereError as exc:
        for pvm in request.vms.filter(state=ProvisionedVm.State.QUEUED):
            set_state(pvm, ProvisionedVm.State.FAILED, str(exc))


@shared_task(name="hosts.provision_clear_guestinfo", ignore_result=True)
def clear_guestinfo_task(pvm_id: int) -> None:
    pvm = ProvisionedVm.objects.select_related("request__vcenter").filter(pk=pvm_id).first()
    if pvm is not None:
        flow.clear_guestinfo_of(pvm)
