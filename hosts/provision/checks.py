"""Checks before any clone: a request that would fail or break a limit (not a Photon
template, a name already taken, no room on the datastore, over quota) is refused as
``ProvisionError`` before the first clone, so a refused request changes nothing in vCenter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.db.models import Q, QuerySet, Sum

from hosts.models import Host, ProvisionedVm, ProvisionQuota, ProvisionRequest, VirtualMachine
from hosts.models.vsphere import PHOTON_GUEST_ID
from hosts.vsphere import client as vsphere
from hosts.vsphere.client import inventory as vsphere_inventory
from hosts.vsphere.client import vm as vsphere_vm

MAX_COUNT = 20
_HOSTNAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


class ProvisionError(Exception):
    """Why a request is refused, in words a person can act on."""


# --- checks before any clone ----------------------------------------------------------------


def expand_names(pattern: str, count: int) -> list[str]:
    """``web-{n}`` x3 -> web-1, web-2, web-3; each must be a valid host name."""
    pattern = pattern.strip().lower()
    if count < 1 or count > MAX_COUNT:
        raise ProvisionError(f"Provision between 1 and {MAX_COUNT} hosts at a time.")
    if count > 1 and "{n}" not in pattern:
        raise ProvisionError(
            "A name pattern for more than one host must contain {n} (web-{n}: web-1, web-2...)."
        )
    names = [pattern.replace("{n}", str(i)) for i in range(1, count + 1)]
    for name in names:
        if not _HOSTNAME.match(name):
            raise ProvisionError(
                f"{name!r} is not a valid host name: lowercase letters, digits and '-', at most 63."
            )
    return names


@dataclass(frozen=True)
class Plan:
    names: list[str]
    template_name: str


def template_vm(si: vsphere.ServiceInstance, moref: str) -> Any:
    try:
        return vsphere_vm.existing(si, moref)
    except vsphere.NotFound:
        raise ProvisionError("The template VM no longer exists in vCenter.") from None


def cloneable(vcenters: Any) -> QuerySet[VirtualMachine]:
    """The VMs of ``vcenters`` that could ever be cloned into a portal host: Photon OS ones
    (what ``check`` asks of the template at run time), never a portal host's VM (a clone
    would carry its disks and secrets) nor one the portal made."""
    return (
        VirtualMachine.objects.filter(
            vcenter__in=vcenters, gone=False, host__isnull=True, guest_id=PHOTON_GUEST_ID
        )
        .exclude(moref__in=ProvisionedVm.objects.exclude(moref="").values("moref"))
        .select_related("vcenter", "datacenter")
    )


def template_choices(projects: Any, vcenters: Any) -> QuerySet[VirtualMachine]:
    """The VMs that may be offered as templates to someone provisioning in ``projects``:
    cloneable ones marked as templates in vSphere, or listed by an Admin on one of those
    projects' quotas."""
    listed = ProvisionQuota.templates.through.objects.filter(provisionquota__project__in=projects)
    return cloneable(vcenters).filter(Q(is_template=True) | Q(pk__in=listed.values("virtualmachine_id")))


def quota_candidates(vcenters: Any) -> QuerySet[VirtualMachine]:
    """The VMs an Admin may list on a quota: cloneable ones vSphere does not mark as
    templates (those are offered without being listed)."""
    return cloneable(vcenters).filter(is_template=False)


def check_template(request: ProvisionRequest, template: Any = None) -> None:
    """Refuse a template that is not one: vSphere's own flag (read live when ``template``
    is given, else the synced one) or the project's quota list, and never a host's VM."""
    vcenter = request.vcenter_id
    row = (
        VirtualMachine.objects.filter(vcenter=vcenter, moref=request.template).select_related("host").first()
    )
    name = (row.name if row else "") or request.template_name or request.template
    made_here = ProvisionedVm.objects.filter(request__vcenter=vcenter, moref=request.template).exists()
    if (row is not None and row.host_id is not None) or made_here:
        raise ProvisionError(
            f"{name!r} is a portal host's VM, not a template: a clone would copy that host's disks "
            "and secrets. Choose a VM marked as a template in vSphere."
        )
    marked = vsphere_vm.is_template(template) if template is not None else bool(row and row.is_template)
    listed = ProvisionQuota.objects.filter(
        project=request.project_id, templates__vcenter=vcenter, templates__moref=request.template
    ).exists()
    if not (marked or listed):
        raise ProvisionError(
            f"{name!r} is not a template: only VMs marked as templates in vSphere, or VMs an Admin "
            f"lists on project {request.project}'s provisioning quota, can be cloned."
        )


def check(request: ProvisionRequest, si: vsphere.ServiceInstance) -> Plan:
    """Refuse, clearly, whatever would make the clones fail or break a limit."""
    names = expand_names(request.name_pattern, request.count)
    check_quota(request)
    if not ProvisionQuota.objects.filter(project=request.project, vcenters=request.vcenter_id).exists():
        raise ProvisionError(
            f"Project {request.project} may not clone in vCenter {request.vcenter}: "
            "an Admin allows it on the project's provisioning quota."
        )
    template = template_vm(si, request.template)
    guest_id = vsphere_vm.guest_id(template)
    if guest_id != PHOTON_GUEST_ID:
        raise ProvisionError(
            f"{vsphere_vm.name(template)!r} is not a Photon OS template (guest {guest_id or 'unknown'}): "
            "only Photon templates can boot into portal hosts."
        )
    check_template(request, template)
    if request.network and vsphere_vm.first_nic(template) is None:
        raise ProvisionError(
            f"{vsphere_vm.name(template)!r} has no network adapter to connect to the chosen network: "
            "leave the network empty or add an adapter to the template."
        )
    taken = vsphere_inventory.vm_names(si) | {
        n.lower()
        for n in VirtualMachine.objects.filter(vcenter=request.vcenter, gone=False).values_list(
            "name", flat=True
        )
    }
    taken |= {n.lower() for n in Host.objects.filter(project=request.project).values_list("name", flat=True)}
    collide = sorted(set(names) & taken)
    if collide:
        raise ProvisionError(
            f"These names are already taken: {', '.join(collide)}. Choose another name pattern."
        )
    if request.datastore:
        try:
            free, ds_name = vsphere_vm.datastore_space(si, request.datastore)
        except vsphere.NotFound:
            raise ProvisionError("The datastore no longer exists in vCenter.") from None
        per_vm = vsphere_vm.template_size(template)
        needed = per_vm * request.count
        if needed > free:
            raise ProvisionError(
                f"Datastore {ds_name!r} has {free // 2**20} MB free; "
                f"{request.count} clone(s) need {needed // 2**20} MB."
            )
    return Plan(names=names, template_name=vsphere_vm.name(template))


def check_quota(request: ProvisionRequest) -> None:
    quota = ProvisionQuota.objects.filter(project=request.project).first()
    if quota is None:
        raise ProvisionError(f"Project {request.project} has no provisioning quota: an Admin must set one.")
    # A failed or cancelled VM counts no more (its VM in vCenter is deleted from its request).
    live_vms = ProvisionedVm.objects.filter(request__project=request.project).exclude(
        state__in=[ProvisionedVm.State.FAILED, ProvisionedVm.State.CANCELLED]
    )
    used = live_vms.aggregate(cpus=Sum("request__cpus"), memory=Sum("request__memory_mb"))
    vms = live_vms.count() + request.count
    cpus = (used["cpus"] or 0) + request.cpus * request.count
    memory = (used["memory"] or 0) + request.memory_mb * request.count
    over = []
    if vms > quota.max_vms:
        over.append(f"{vms} VMs (quota {quota.max_vms})")
    if cpus > quota.max_cpus:
        over.append(f"{cpus} CPUs (quota {quota.max_cpus})")
    if memory > quota.max_memory_mb:
        over.append(f"{memory} MB of memory (quota {quota.max_memory_mb})")
    if over:
        raise ProvisionError(
            f"Over project {request.project}'s quota: this request would make {', '.join(over)}."
        )
