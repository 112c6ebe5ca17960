"""Provisioning: check a request (hosts.provision.checks), then clone each VM from a
Photon template with its cloud-init data in guestinfo, and follow it until it enrolls
(hosts.provision.enrollment); afterwards clear its secrets from guestinfo, fail the VMs
that never phone home, and delete a failed one.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async
from celery import shared_task
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from hosts.changes.files import SettingsError
from hosts.models import ProvisionedVm, ProvisionRequest
from hosts.provision import cloud_config, enrollment
from hosts.provision.checks import ProvisionError, check, template_vm
from hosts.provision.seed import issue_seed
from hosts.vsphere import client as vsphere
from hosts.vsphere.client import clone as vsphere_clone
from hosts.vsphere.client import vm as vsphere_vm
from portal import audit, events, live

# --- the request and its clones ------------------------------------------------------------------


def topic(request: ProvisionRequest) -> str:
    return f"project:{request.project_id}:provision:{request.pk}"


def publish_vm(pvm: ProvisionedVm) -> None:
    html = render_to_string("hosts/provision/partials/vm_row.html", {"pvm": pvm})
    live.publish(topic(pvm.request), html=html, data={"vm": pvm.pk, "state": pvm.state})
    # The requester's My work shows the whole request as one row, and its status is its
    # VMs': every VM that moves moves that row.
    from hosts.provision import work  # FIXME(issue 13): a cycle until summary leaves this module

    work.publish(pvm.request)


@dataclass(frozen=True)
class RequestSummary:
    """How a provisioning request goes, told by its VMs (it keeps no state of its own)."""

    status: str  # running | done | failed | partial
    label: str
    progress: int  # 0..100


_ENDED = {ProvisionedVm.State.ENROLLED, ProvisionedVm.State.FAILED}
# How far along a VM in each state is, in percent: the request's progress is their mean.
_PROGRESS = {
    ProvisionedVm.State.QUEUED: 0,
    ProvisionedVm.State.CLONING: 25,
    ProvisionedVm.State.POWERING_ON: 50,
    ProvisionedVm.State.WAITING: 75,
    ProvisionedVm.State.ENROLLED: 100,
    ProvisionedVm.State.FAILED: 100,
}


def summary(request: ProvisionRequest, states: list[str] | None = None) -> RequestSummary:
    """``request``'s status from its VMs' ``states`` (read from ``request.vms`` when not given:
    prefetch ``vms`` on lists, or pass the states, so a page does not query once per row)."""
    if states is None:
        states = [vm.state for vm in request.vms.all()]
    if not states:
        # Its VMs are made in the transaction that saves it: a request without any will
        # never make a host, and must not look as if it were still going.
        return RequestSummary("failed", "No hosts", 100)
    # Rounded down: a request still running never shows 100.
    progress = sum(_PROGRESS.get(s, 0) for s in states) // len(states)
    enrolled = states.count(ProvisionedVm.State.ENROLLED)
    if any(s not in _ENDED for s in states):
        # Not ended, a state this code does not know included: better "running" than a wrong outcome.
        return RequestSummary("running", "Running", progress)
    if enrolled == len(states):
        return RequestSummary("done", "Enrolled", 100)
    if enrolled == 0:
        return RequestSummary("failed", "Failed", 100)
    return RequestSummary("partial", f"Partly enrolled ({enrolled} of {len(states)})", 100)


def set_state(pvm: ProvisionedVm, state: str, detail: str = "", **fields: Any) -> None:
    pvm.state, pvm.detail = state, detail
    for name, value in fields.items():
        setattr(pvm, name, value)
    pvm.save(update_fields=["state", "detail", "updated", *fields])
    publish_vm(pvm)


def start(
    request: ProvisionRequest, *, enroll_base_url: str, si: vsphere.ServiceInstance
) -> list[ProvisionedVm]:
    """Check ``request`` (already saved), make its VM rows, and queue the clones."""
    plan = check(request, si)
    request.template_name = plan.template_name
    request.save(update_fields=["template_name"])
    pvms = [
        ProvisionedVm.objects.create(
            request=request,
            name=name,
            instance_id=f"portal-{uuid.uuid4()}",
            token_hash=f"unissued-{uuid.uuid4().hex}"[:64],
            token_expires=enrollment.expiry(),
        )
        for name in plan.names
    ]
    audit.record("provision.request", obj=request, project=request.project, after={"names": plan.names})
    transaction.on_commit(lambda: run_request.delay(request.pk, enroll_base_url))
    return pvms


@shared_task(name="hosts.provision_request", ignore_result=True)
def run_request(request_id: int, enroll_base_url: str) -> None:
    request = ProvisionRequest.objects.select_related("vcenter", "project").get(pk=request_id)
    pending = list(request.vms.filter(state=ProvisionedVm.State.QUEUED))
    if not pending or request.vcenter is None:
        return
    try:
        with vsphere.session(request.vcenter) as si:
            for pvm in pending:
                clone(pvm, si, enroll_base_url)
    except vsphere.VSphereError as exc:
        for pvm in request.vms.filter(state=ProvisionedVm.State.QUEUED):
            set_state(pvm, ProvisionedVm.State.FAILED, str(exc))


def clone(pvm: ProvisionedVm, si: vsphere.ServiceInstance, enroll_base_url: str) -> None:
    """Clone one VM with its own token and certificate in guestinfo, then power it on."""
    request = pvm.request
    # Claimed once: a redelivered or doubled task must not clone the same VM twice.
    if not ProvisionedVm.objects.filter(pk=pvm.pk, state=ProvisionedVm.State.QUEUED).update(
        state=ProvisionedVm.State.CLONING
    ):
        return
    seed, fingerprint = issue_seed(pvm, enroll_base_url)
    profile = request.profile.settings if request.profile else {}
    try:
        extra = cloud_config.guestinfo(seed, profile)
    except SettingsError as exc:
        # The profile was changed to something refused after the request was queued.
        _failed(pvm, f"profile {request.profile} is refused: {exc}; nothing was cloned")
        return
    set_state(pvm, ProvisionedVm.State.CLONING, tls_fingerprint=fingerprint)
    try:
        template = template_vm(si, request.template)
        new_vm = vsphere_clone.clone_vm(request, si, template, pvm.name)
        pvm.moref = vsphere_vm.moref_of(new_vm)
        pvm.save(update_fields=["moref"])
        vsphere_clone.configure(new_vm, request, extra)
        set_state(pvm, ProvisionedVm.State.POWERING_ON)
        vsphere_clone.power_on(new_vm)
    # VSphereError: the template lost its network adapter after the checks.
    except (vsphere.MethodFault, vsphere.VSphereError, ProvisionError) as exc:
        message = getattr(exc, "msg", "") or str(exc) or type(exc).__name__
        _failed(pvm, f"vCenter refused: {message}")
        return
    set_state(pvm, ProvisionedVm.State.WAITING, "Powered on; waiting for the host to phone home.")


def _failed(pvm: ProvisionedVm, reason: str) -> None:
    set_state(pvm, ProvisionedVm.State.FAILED, reason[:1].upper() + reason[1:])
    events.notify(
        f"Provisioning {pvm.name} failed: {reason}", severity="error", obj=pvm, project=pvm.request.project_id
    )


# --- after enrollment -------------------------------------------------------------------------

#: guestinfo keys whose values carry secrets (the user data holds the host's TLS server key),
#: emptied once the host has enrolled. The metadata stays: with its instance-id kept, cloud-init
#: does not take a later boot for a new instance (new SSH host keys that no longer match the pin).
SECRET_GUESTINFO_KEYS = ("guestinfo.userdata", "guestinfo.userdata.encoding")


def clear_guestinfo(pvm: ProvisionedVm) -> bool:
    """Empty ``pvm``'s secret guestinfo keys in vCenter; best effort (an event says when it failed)."""
    vcenter = pvm.request.vcenter
    if vcenter is None or not pvm.moref:
        return False  # a kickstart install: no guestinfo
    try:
        with vsphere.session(vcenter) as si:
            vsphere_vm.set_extra_config(si, pvm.moref, dict.fromkeys(SECRET_GUESTINFO_KEYS, ""))
    except (vsphere.VSphereError, vsphere.MethodFault) as exc:
        message = getattr(exc, "msg", "") or str(exc) or type(exc).__name__
        events.notify(
            f"{pvm.name} enrolled, but its guestinfo still holds its TLS key: clearing it failed ({message})",
            severity="warning",
            obj=pvm,
            project=pvm.request.project_id,
        )
        return False
    return True


@shared_task(name="hosts.provision_clear_guestinfo", ignore_result=True)
def clear_guestinfo_task(pvm_id: int) -> None:
    pvm = ProvisionedVm.objects.select_related("request__vcenter").filter(pk=pvm_id).first()
    if pvm is not None:
        clear_guestinfo(pvm)


# --- VMs that never phone home ----------------------------------------------------------------

#: Seconds between looks for VMs whose enrollment time ran out (portal.watchers).
OVERDUE_INTERVAL = 30.0


def fail_overdue(now: Any = None) -> list[int]:
    """Mark failed, with what vCenter knows, every VM whose enrollment time ran out."""
    now = now or timezone.now()
    overdue = list(
        ProvisionedVm.objects.filter(
            state__in=[ProvisionedVm.State.WAITING, ProvisionedVm.State.POWERING_ON], token_expires__lte=now
        ).select_related("request__vcenter")
    )
    failed: list[int] = []
    for pvm in overdue:
        vcenter = pvm.request.vcenter
        if vcenter is None or not pvm.moref:
            known = "no VM in vCenter to ask about" if vcenter is None else "never cloned"
        else:
            try:
                with vsphere.session(vcenter) as si:
                    known = vsphere_vm.what_vcenter_knows(si, pvm.moref)
            except vsphere.VSphereError as exc:
                known = f"vCenter unreachable: {exc}"
        # Only if still waiting: it may have enrolled while vCenter was asked.
        if not ProvisionedVm.objects.filter(pk=pvm.pk, state=pvm.state, token_used__isnull=True).update(
            state=ProvisionedVm.State.FAILED
        ):
            continue
        pvm.refresh_from_db()
        set_state(pvm, ProvisionedVm.State.FAILED, f"Did not phone home in time: {known}.")
        events.notify(
            f"{pvm.name} did not enroll in time ({known})",
            severity="error",
            obj=pvm,
            project=pvm.request.project_id,
        )
        failed.append(pvm.pk)
    return failed


async def watch_overdue(shard: Any) -> None:
    """The watcher (portal.watchers) that fails VMs which never phone home."""
    log = logging.getLogger(__name__)
    while True:
        try:
            if shard.index == 1:  # one shard is enough: the query is small and the update is guarded
                await sync_to_async(fail_overdue, thread_sensitive=False)()
        except Exception:
            log.exception("provisioning: checking overdue VMs failed")
        await asyncio.sleep(OVERDUE_INTERVAL)  # a schedule, not a wait on a condition


def delete_vm(pvm: ProvisionedVm, actor: Any) -> None:
    """Power off and destroy a VM that failed to enroll, then forget its row's moref."""
    if pvm.state != ProvisionedVm.State.FAILED:
        raise ProvisionError("Only a VM that failed can be deleted from its request.")
    if pvm.moref and pvm.request.vcenter is not None:
        with vsphere.session(pvm.request.vcenter) as si:
            try:
                vsphere_vm.destroy(si, pvm.moref)  # one already gone is deleted
            except vsphere.MethodFault as exc:
                raise ProvisionError(
                    f"vCenter refused to delete {pvm.name}: {exc.msg or type(exc).__name__}"
                ) from None
    audit.record(
        "provision.delete_vm", obj=pvm, project=pvm.request.project, actor=actor, before={"moref": pvm.moref}
    )
    pvm.moref = ""
    set_state(pvm, ProvisionedVm.State.FAILED, "Deleted from vCenter.", moref="")
