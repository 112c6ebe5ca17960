"""What people ask of provisioning, for the UI and the API alike: start a checked request,
set a project's quota (Admins), cancel a VM still waiting for enrollment."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.utils import timezone

from hosts.models import ProvisionedVm, ProvisionQuota, ProvisionRequest, VCenter, VirtualMachine
from hosts.models.vsphere import PHOTON_GUEST_ID
from hosts.provision import tasks, tokens
from hosts.provision.checks import check, quota_candidates
from hosts.provision.vm_state import set_state
from hosts.vsphere import client as vsphere
from portal import access, audit
from portal.models import Project, Role
from portal.queueing import enqueue
from portal.refused import Refused


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
            token_expires=tokens.expiry(),
        )
        for name in plan.names
    ]
    audit.record("provision.request", obj=request, project=request.project, after={"names": plan.names})
    enqueue(
        tasks.run_request,
        request.pk,
        enroll_base_url,
        unqueued=lambda message: tasks.fail_unfinished(request, message, (ProvisionedVm.State.QUEUED,)),
    )
    return pvms


# --- quotas ----------------------------------------------------------------------------------

QUOTA_LIMITS = ("max_vms", "max_cpus", "max_memory_mb")


def _not_listable(vm: VirtualMachine, vcenter_ids: set[int]) -> str:
    """Why ``vm`` may not be listed on a quota (quota_candidates said no)."""
    if vm.vcenter_id not in vcenter_ids:
        return f"{vm.name} is in vCenter {vm.vcenter}, which this quota does not list."
    if vm.guest_id != PHOTON_GUEST_ID:
        return f"{vm.name} is not a Photon OS VM: only Photon templates boot into portal hosts."
    if vm.host_id is not None:
        return f"{vm.name} is a portal host's VM: a clone would copy that host's disks and secrets."
    if vm.is_template:
        return f"{vm.name} is marked as a template in vSphere already: it is offered without being listed."
    return f"{vm.name} cannot be cloned (gone from vCenter, or a VM the portal made)."


def _quota_state(quota: ProvisionQuota) -> dict[str, Any]:
    return {
        "vcenters": sorted(vc.name for vc in quota.vcenters.all()),
        "templates": sorted(
            f"{vm.vcenter.name}/{vm.name}" for vm in quota.templates.select_related("vcenter")
        ),
        **{name: getattr(quota, name) for name in QUOTA_LIMITS},
    }


def set_quota(
    project: Project,
    actor: Any,
    *,
    vcenters: Iterable[VCenter],
    templates: Iterable[VirtualMachine],
    **limits: int,
) -> ProvisionQuota:
    """Set what ``project`` may provision: the vCenters it may clone in, the most VMs, CPUs
    and memory it may hold, and the VMs (not marked as templates) it may clone besides
    vSphere's templates. Admins only; audited as ``provision.quota``."""
    if not access.can(actor, "provision.quota"):
        raise Refused("Only an Admin sets provisioning quotas.", status=403)
    vcenters, templates = list(vcenters), list(templates)
    for vcenter in vcenters:
        if not vcenter.enabled:
            raise Refused(f"vCenter {vcenter} is disabled: enable it first.", field="vcenters", status=400)
    for name in QUOTA_LIMITS:
        value = limits.get(name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise Refused("A whole number, 0 or more.", field=name, status=400)
    if set(limits) - set(QUOTA_LIMITS):
        raise Refused(
            f"Unknown quota fields: {', '.join(sorted(set(limits) - set(QUOTA_LIMITS)))}.", status=400
        )
    allowed = set(quota_candidates(vcenters).values_list("pk", flat=True))
    vcenter_ids = {vc.pk for vc in vcenters}
    for vm in templates:
        if vm.pk not in allowed:
            raise Refused(_not_listable(vm, vcenter_ids), field="templates", status=400)
    with transaction.atomic():
        quota, created = ProvisionQuota.objects.select_for_update().get_or_create(project=project)
        before = None if created else _quota_state(quota)
        for name in QUOTA_LIMITS:
            setattr(quota, name, limits[name])
        quota.save()
        quota.vcenters.set(vcenters)
        quota.templates.set(templates)
        audit.record(
            "provision.quota",
            obj=quota,
            project=project,
            actor=actor,
            before=before,
            after=_quota_state(quota),
        )
    return quota


# --- cancelling a VM before it enrolls -------------------------------------------------------

#: Not yet cloned, or cloned and waiting for its phone-home: cloning and powering on are
#: short steps in vCenter that a task is taking, and are let finish.
CANCELLABLE = (ProvisionedVm.State.QUEUED, ProvisionedVm.State.WAITING)


def may_cancel(user: Any, pvm: ProvisionedVm) -> bool:
    """Whoever requested it (still a Provisioner of its project), or a Project admin."""
    project = pvm.request.project
    if not access.can(user, "provision.request", project):
        return False
    if access.is_admin(user) or pvm.request.requester_id == user.pk:
        return True
    return access.role_in(user, project) == Role.PROJECT_ADMIN


def cancel_vm(pvm: ProvisionedVm, actor: Any) -> None:
    """Stop ``pvm`` before it enrolls: its enrollment token stops working at once (its VM, if
    cloned, stays in vCenter to delete from the request), and a queued one is never cloned."""
    if not may_cancel(actor, pvm):
        raise Refused(
            f"Only whoever requested {pvm.name} or a Project admin of {pvm.request.project} can cancel it.",
            status=403,
        )
    with transaction.atomic():
        # Guarded: it may enroll, or its clone start, while this runs (enrollment claims
        # the token only of a VM not cancelled, and the clone only a queued VM).
        claimed = ProvisionedVm.objects.filter(
            pk=pvm.pk, state__in=CANCELLABLE, token_used__isnull=True
        ).update(state=ProvisionedVm.State.CANCELLED, token_expires=timezone.now())
        pvm.refresh_from_db()
        if not claimed:
            raise Refused(
                f"Only a VM still waiting for enrollment can be cancelled: {pvm.name} is "
                f"{pvm.get_state_display().lower()}.",
                status=409,
            )
        who = getattr(actor, "username", "") or "someone"
        # The credentials made for it alone would only ever serve its enrollment.
        set_state(
            pvm,
            ProvisionedVm.State.CANCELLED,
            f"Cancelled by {who}: its enrollment token no longer works.",
            client_ca_key="",
            ssh_private_key="",
        )
        audit.record(
            "provision.cancel_vm",
            obj=pvm,
            project=pvm.request.project,
            actor=actor,
            before={"moref": pvm.moref},
        )
