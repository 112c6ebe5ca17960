"""Celery tasks for provisioning: thin, the work is in hosts.provision.flow and guestinfo."""

from __future__ import annotations

from celery import shared_task

from hosts.models import ProvisionedVm, ProvisionRequest
from hosts.provision import flow, guestinfo
from hosts.provision.vm_state import set_state
from hosts.vsphere import client as vsphere


@shared_task(name="hosts.provision_request", ignore_result=True)
def run_request(request_id: int, enroll_base_url: str) -> None:
    request = ProvisionRequest.objects.select_related("vcenter", "project").get(pk=request_id)
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
        guestinfo.clear_guestinfo(pvm)
