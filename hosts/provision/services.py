"""What people ask of provisioning, for the UI and the API alike: request hosts (a checked
request, started), set a project's quota (Admins), cancel a VM still waiting for enrollment."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from hosts.models import ProvisionedVm, ProvisionQuota, ProvisionRequest, VCenter, VirtualMachine
from hosts.models.vsphere import PHOTON_GUEST_ID
from hosts.provision import tasks, tokens
from hosts.provision.checks import ProvisionError, check, quota_candidates
from hosts.provision.forms import allowed_vcenters
from hosts.provision.vm_state import set_state
from hosts.vsphere import client as vsphere
from hosts.vsphere import placement as vsphere_placement
from hosts.vsphere.placement import Placement
from portal import access, audit
from portal.models import Project, Role
from portal.queueing import QueueUnavailable, enqueue
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


# --- requesting hosts (the request form's page and the API) ------------------------------------


def require_may_request(actor: Any, project: Project | None) -> None:
    """Only a Provisioner or Project admin of ``project`` (or an Admin) requests hosts there."""
    if project is None or not access.can(actor, "provision.request", project):
        # A project they may not see is not named: its name is not theirs to learn.
        seen = project is not None and access.can(actor, "provision.view", project)
        where = project if seen else "a project"
        raise Refused(f"Only a Provisioner or Project admin of {where} can request hosts in it.", status=403)


def placement_for(user: Any, vcenter_id: Any) -> tuple[Placement | None, str]:
    """The placement (pools, folders, networks, datastores) of a vCenter ``user`` may clone
    in, read live, or why there is none to offer; (None, "") for a vCenter not theirs."""
    vcenter = allowed_vcenters(user).filter(pk=vcenter_id).first() if str(vcenter_id).isdigit() else None
    if vcenter is None:
        return None, ""
    try:
        return vsphere_placement.for_vcenter(vcenter), ""
    except vsphere.VSphereError as exc:
        return None, f"The clusters, folders, networks and datastores of {vcenter} could not be read: {exc}"


@dataclass(frozen=True)
class Requested:
    request: ProvisionRequest
    #: Why its clones were not queued (the broker is down): the request is recorded, its VMs failed.
    not_queued: str = ""


def request_hosts(
    actor: Any, data: Mapping[str, Any], *, placement: Mapping[str, str], enroll_base_url: str
) -> Requested:
    """Save and start a request for new hosts from the request form's checked ``data``
    (ProvisionForm.cleaned_data; ``placement``: its placement_names()). Refused: 403 to
    someone who may not request in the project, 400 when a check before any clone says no
    (over quota, a name taken, not a Photon template...), 502 when vCenter does not answer."""
    project = data["project"]
    require_may_request(actor, project)
    request = ProvisionRequest(
        project=project,
        requester=actor,
        vcenter=data["vcenter"],
        template=data["template"].moref,
        template_name=data["template"].name,
        resource_pool=data.get("resource_pool") or "",
        folder=data.get("folder") or "",
        network=data.get("network") or "",
        datastore=data.get("datastore") or "",
        placement=dict(placement),
        cpus=data["cpus"],
        memory_mb=data["memory_mb"],
        count=data["count"],
        name_pattern=data["name_pattern"].strip().lower(),
        profile=data.get("profile"),
    )
    try:
        with vsphere.session(data["vcenter"]) as si, transaction.atomic():
            request.save()
            start(request, enroll_base_url=enroll_base_url, si=si)
    except ProvisionError as exc:
        raise Refused(str(exc), status=400) from None
    except vsphere.VSphereError as exc:
        raise Refused(str(exc), status=502) from None
    except QueueUnavailable as exc:
        # Raised as the block commits: the request and its (failed) VMs are recorded.
        return Requested(request, not_queued=exc.message)
    return Requested(request)


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
