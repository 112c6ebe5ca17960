"""Provisioning: check a request (hosts.provision.checks), then clone each VM from a
Photon template with its cloud-init data in guestinfo, and follow it until it enrolls
(hosts.provision.enrollment); afterwards clear its secrets from guestinfo, fail the VMs
that never phone home, and delete a failed one.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

from channels.db import database_sync_to_async
from django.utils import timezone

from hosts.changes.files import SettingsError
from hosts.models import ProvisionedVm
from hosts.provision import cloud_config, guestinfo
from hosts.provision.checks import ProvisionError, template_vm
from hosts.provision.seed import issue_seed
from hosts.provision.vm_state import set_state
from hosts.vsphere import client as vsphere
from hosts.vsphere.client import clone as vsphere_clone
from hosts.vsphere.client import vm as vsphere_vm
from portal import audit, events

# --- the request and its clones ------------------------------------------------------------------


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
        f"Provisioning {pvm.name} failed: {reason}",
        severity="error",
        obj=pvm,
        project=pvm.request.project_id,
        kind="provision.failed",
    )


# --- after enrollment -------------------------------------------------------------------------

#: How long an enrolled VM's guestinfo waits between tries to clear it (its task was not
#: queued, or vCenter refused), and how long after enrollment the tries go on.
GUESTINFO_RETRY = timedelta(minutes=5)
GUESTINFO_GIVE_UP = timedelta(days=1)


def clear_guestinfo_of(pvm: ProvisionedVm, *, notify: bool = True) -> bool:
    """Clear the secrets from an enrolled VM's guestinfo; True once they are gone."""
    cleared = guestinfo.clear_guestinfo(pvm, notify=notify)
    if cleared:
        ProvisionedVm.objects.filter(pk=pvm.pk).update(guestinfo_to_clear=False)
    return cleared


def clear_left_guestinfo(now: Any = None) -> list[int]:
    """Try again, once per ``GUESTINFO_RETRY`` each, to clear the guestinfo of enrolled VMs
    whose clearing task was never queued or failed; ids of the VMs cleared now.

    A VM that still refuses a day after it enrolled (deleted since, most likely) is given
    up with an event that says what is left to do by hand."""
    now = now or timezone.now()
    left = ProvisionedVm.objects.filter(guestinfo_to_clear=True, updated__lte=now - GUESTINFO_RETRY)
    cleared: list[int] = []
    for pvm in left.select_related("request__vcenter"):
        if pvm.request.vcenter is None or (pvm.token_used and pvm.token_used < now - GUESTINFO_GIVE_UP):
            ProvisionedVm.objects.filter(pk=pvm.pk).update(guestinfo_to_clear=False)
            events.notify(
                f"{pvm.name}: gave up clearing its guestinfo, which may still hold its TLS key; "
                "empty guestinfo.userdata in vCenter by hand if the VM still exists",
                severity="warning",
                obj=pvm,
                project=pvm.request.project_id,
            )
            continue
        # The next try waits a full interval whatever this one does.
        ProvisionedVm.objects.filter(pk=pvm.pk).update(updated=now)
        if clear_guestinfo_of(pvm, notify=False):
            cleared.append(pvm.pk)
    return cleared


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
            kind="provision.failed",
        )
        failed.append(pvm.pk)
    return failed


async def watch_overdue(shard: Any) -> None:
    """The watcher (portal.watchers) that fails VMs which never phone home."""
    log = logging.getLogger(__name__)
    while True:
        try:
            if shard.index == 1:  # one shard is enough: the query is small and the update is guarded
                # Not a bare sync_to_async: this closes the thread's connection after each pass,
                # back to the pool, instead of an idle executor thread holding one for good.
                await database_sync_to_async(fail_overdue, thread_sensitive=False)()
                await database_sync_to_async(clear_left_guestinfo, thread_sensitive=False)()
        except Exception:
            log.exception("provisioning: checking overdue VMs failed")
        await asyncio.sleep(OVERDUE_INTERVAL)  # a schedule, not a wait on a condition


def delete_vm(pvm: ProvisionedVm, actor: Any) -> None:
    """Power off and destroy a VM that failed to enroll or was cancelled, then forget its row's moref."""
    if pvm.state not in (ProvisionedVm.State.FAILED, ProvisionedVm.State.CANCELLED):
        raise ProvisionError("Only a VM that failed or was cancelled can be deleted from its request.")
    if pvm.moref and pvm.request.vcenter is not None:
        with vsphere.session(pvm.request.vcenter) as si:
            try:
                vsphere_vm.destroy(si, pvm.moref)  # one already gone is deleted
            except vsphere.MethodFault as exc:
                raise ProvisionError(
                    f"vCenter refused to delete {pvm.name}: {vsphere.fault_message(exc)}"
                ) from None
    audit.record(
        "provision.delete_vm", obj=pvm, project=pvm.request.project, actor=actor, before={"moref": pvm.moref}
    )
    pvm.moref = ""
    cancelled = pvm.state == ProvisionedVm.State.CANCELLED
    detail = "Cancelled, then deleted from vCenter." if cancelled else "Deleted from vCenter."
    set_state(pvm, pvm.state, detail, moref="")
