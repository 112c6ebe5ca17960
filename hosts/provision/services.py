"""What people ask of provisioning, for the UI and the API alike: start a checked request,
set a project's quota (Admins)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from django.db import transaction

from hosts.models import ProvisionedVm, ProvisionQuota, ProvisionRequest, VCenter, VirtualMachine
from hosts.models.vsphere import PHOTON_GUEST_ID
from hosts.provision import tasks, tokens
from hosts.provision.checks import check, quota_candidates
from hosts.vsphere import client as vsphere
from portal import access, audit
from portal.models import Project
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
    transaction.on_commit(lambda: tasks.run_request.delay(request.pk, enroll_base_url))
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

