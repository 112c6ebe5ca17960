"""Provisioning: check a request, then clone each VM from a Photon template with its
cloud-init data in guestinfo, and follow it until it enrolls (hosts.provision.enrollment).

Every refusal a person can act on (not a Photon template, a name already taken,
no room on the datastore, over quota) is raised as ``ProvisionError`` before the
first clone, so a refused request changes nothing in vCenter.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from celery import shared_task
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from django.db import transaction
from django.db.models import Q, Sum
from django.template.loader import render_to_string
from pyVim.task import WaitForTask
from pyVmomi import vim, vmodl

from hosts.changes.files import SettingsError
from hosts.models import Host, ProvisionedVm, ProvisionQuota, ProvisionRequest, VirtualMachine
from hosts.models.vsphere import PHOTON_GUEST_ID
from hosts.provision import ca as portal_ca
from hosts.provision import cloud_config, enrollment
from hosts.vsphere import client as vsphere
from hosts.vsphere import sync as vsphere_sync
from portal import audit, events, live

MAX_COUNT = 20
_HOSTNAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


class ProvisionError(Exception):
    """Why a request is refused, in words a person can act on."""


# --- credentials made for one host ---------------------------------------------------------


@dataclass(frozen=True)
class SshKey:
    private: str = field(repr=False)
    public: str


def new_ssh_key(host_name: str) -> SshKey:
    """An Ed25519 key pair for the host named ``host_name`` alone: no other host trusts it."""
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    ).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return SshKey(private=private, public=f"{public.decode()} photon-portal@{host_name}")


def public_ssh_key(private: str) -> str:
    """The OpenSSH public line of a stored private key."""
    key = serialization.load_ssh_private_key(private.encode(), password=None)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )


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


def _vm_names(si: vim.ServiceInstance) -> set[str]:
    """Every VM name vCenter has now (one paged property-collector read, not VM by VM)."""
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    try:
        spec = vsphere_sync.container_filter(view, {vim.VirtualMachine: ["name"]})
        return {
            str(props.get("name", "")).lower()
            for _ref, props in vsphere_sync.retrieve(si, content.propertyCollector, [spec])
        }
    finally:
        view.Destroy()


def _template(si: vim.ServiceInstance, moref: str) -> vim.VirtualMachine:
    vm = vim.VirtualMachine(moref, si._stub)
    try:
        vm.name  # noqa: B018 -- touching it asks vCenter whether the VM exists
    except vmodl.fault.ManagedObjectNotFound:
        raise ProvisionError("The template VM no longer exists in vCenter.") from None
    return vm


def template_choices(projects: Any, vcenters: Any) -> Any:
    """The VMs that may be offered as templates to someone provisioning in ``projects``:
    marked as templates in vSphere, or listed by an Admin on one of those projects'
    quotas; never a VM that is a portal host (a clone would carry its disks and secrets)."""
    listed = ProvisionQuota.templates.through.objects.filter(provisionquota__project__in=projects)
    return (
        VirtualMachine.objects.filter(vcenter__in=vcenters, gone=False, host__isnull=True)
        .filter(Q(is_template=True) | Q(pk__in=listed.values("virtualmachine_id")))
        .exclude(moref__in=ProvisionedVm.objects.exclude(moref="").values("moref"))
    )


def check_template(request: ProvisionRequest, template: vim.VirtualMachine | None = None) -> None:
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
    if template is not None:
        marked = bool(template.config and template.config.template)
    else:
        marked = bool(row and row.is_template)
    listed = ProvisionQuota.objects.filter(
        project=request.project_id, templates__vcenter=vcenter, templates__moref=request.template
    ).exists()
    if not (marked or listed):
        raise ProvisionError(
            f"{name!r} is not a template: only VMs marked as templates in vSphere, or VMs an Admin "
            f"lists on project {request.project}'s provisioning quota, can be cloned."
        )


def _template_size(template: vim.VirtualMachine) -> int:
    """Bytes one clone may take: the storage summary, or, where vCenter has not
    computed one yet (a fresh template; vcsim always), its disks' provisioned size."""
    storage = template.summary.storage
    used = (storage.committed + storage.uncommitted) if storage else 0
    if used:
        return int(used)
    devices = template.config.hardware.device if template.config else []
    return sum(
        int(d.capacityInBytes or d.capacityInKB * 1024)
        for d in devices
        if isinstance(d, vim.vm.device.VirtualDisk)
    )


def check(request: ProvisionRequest, si: vim.ServiceInstance) -> Plan:
    """Refuse, clearly, whatever would make the clones fail or break a limit."""
    names = expand_names(request.name_pattern, request.count)
    check_quota(request)
    if not ProvisionQuota.objects.filter(project=request.project, vcenters=request.vcenter_id).exists():
        raise ProvisionError(
            f"Project {request.project} may not clone in vCenter {request.vcenter}: "
            "an Admin allows it on the project's provisioning quota."
        )
    template = _template(si, request.template)
    guest_id = template.config.guestId if template.config else ""
    if guest_id != PHOTON_GUEST_ID:
        raise ProvisionError(
            f"{template.name!r} is not a Photon OS template (guest {guest_id or 'unknown'}): "
            "only Photon templates can boot into portal hosts."
        )
    check_template(request, template)
    if request.network and _first_nic(template) is None:
        raise ProvisionError(
            f"{template.name!r} has no network adapter to connect to the chosen network: "
            "leave the network empty or add an adapter to the template."
        )
    taken = _vm_names(si) | {
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
        datastore = vim.Datastore(request.datastore, si._stub)
        try:
            free = datastore.summary.freeSpace or 0
            ds_name = datastore.name
        except vmodl.fault.ManagedObjectNotFound:
            raise ProvisionError("The datastore no longer exists in vCenter.") from None
        per_vm = _template_size(template)
        needed = per_vm * request.count
        if needed > free:
            raise ProvisionError(
                f"Datastore {ds_name!r} has {free // 2**20} MB free; "
                f"{request.count} clone(s) need {needed // 2**20} MB."
            )
    return Plan(names=names, template_name=template.name)


def check_quota(request: ProvisionRequest) -> None:
    quota = ProvisionQuota.objects.filter(project=request.project).first()
    if quota is None:
        raise ProvisionError(f"Project {request.project} has no provisioning quota: an Admin must set one.")
    live_vms = ProvisionedVm.objects.filter(request__project=request.project).exclude(
        state=ProvisionedVm.State.FAILED
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


def start(request: ProvisionRequest, *, enroll_base_url: str, si: vim.ServiceInstance) -> list[ProvisionedVm]:
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


def clone_spec(
    request: ProvisionRequest, si: vim.ServiceInstance, template: vim.VirtualMachine
) -> vim.vm.CloneSpec:
    location = vim.vm.RelocateSpec()
    if request.resource_pool:
        location.pool = vim.ResourcePool(request.resource_pool, si._stub)
    elif template.config and template.config.template:
        # A template belongs to no pool; vCenter wants one: its host's cluster.
        location.pool = template.runtime.host.parent.resourcePool
    if request.datastore:
        location.datastore = vim.Datastore(request.datastore, si._stub)
    if request.network:
        location.deviceChange = [_connect_first_nic(request, si, template)]
    return vim.vm.CloneSpec(location=location, powerOn=False, template=False)


def _first_nic(template: vim.VirtualMachine) -> vim.vm.device.VirtualEthernetCard | None:
    devices = template.config.hardware.device if template.config else []
    return next((d for d in devices if isinstance(d, vim.vm.device.VirtualEthernetCard)), None)


def _connect_first_nic(
    request: ProvisionRequest, si: vim.ServiceInstance, template: vim.VirtualMachine
) -> vim.vm.device.VirtualDeviceSpec:
    """The clone's first network adapter on the chosen network (a port group of a
    distributed switch, or a standard network)."""
    nic = _first_nic(template)
    if nic is None:
        raise ProvisionError(f"{template.name!r} has no network adapter to connect to the chosen network.")
    card = vim.vm.device.VirtualEthernetCard
    if request.placement.get("network_kind") == "DistributedVirtualPortgroup":
        group = vim.dvs.DistributedVirtualPortgroup(request.network, si._stub)
        nic.backing = card.DistributedVirtualPortBackingInfo(
            port=vim.dvs.PortConnection(
                portgroupKey=group.key, switchUuid=group.config.distributedVirtualSwitch.uuid
            )
        )
    else:
        network = vim.Network(request.network, si._stub)
        nic.backing = card.NetworkBackingInfo(deviceName=network.name, network=network)
    return vim.vm.device.VirtualDeviceSpec(
        operation=vim.vm.device.VirtualDeviceSpec.Operation.edit, device=nic
    )


def config_spec(request: ProvisionRequest, extra: dict[str, str]) -> vim.vm.ConfigSpec:
    """Size and guestinfo, applied by a reconfigure between clone and power-on: vcsim
    ignores a clone spec's config, and vCenter applies the two steps alike."""
    return vim.vm.ConfigSpec(
        numCPUs=request.cpus,
        memoryMB=request.memory_mb,
        extraConfig=[vim.option.OptionValue(key=k, value=v) for k, v in extra.items()],
    )


def _folder(request: ProvisionRequest, si: vim.ServiceInstance, template: vim.VirtualMachine) -> vim.Folder:
    if request.folder:
        return vim.Folder(request.folder, si._stub)
    return template.parent


def _seed(pvm: ProvisionedVm, enroll_base_url: str) -> tuple[cloud_config.HostSeed, str]:
    """A fresh token, server certificate, client CA and SSH key for ``pvm`` (the CA and the
    key kept on it, encrypted, until enrollment); the server certificate's fingerprint."""
    token = enrollment.issue_token(pvm)
    issued = portal_ca.issue_server([pvm.name])
    client_ca = portal_ca.new_client_ca(pvm.name)
    ssh_key = new_ssh_key(pvm.name)
    pvm.client_ca_cert, pvm.client_ca_key, pvm.ssh_private_key = (
        client_ca.cert,
        client_ca.key,
        ssh_key.private,
    )
    pvm.save(update_fields=["client_ca_cert", "client_ca_key", "ssh_private_key"])
    seed = cloud_config.HostSeed(
        instance_id=pvm.instance_id,
        hostname=pvm.name,
        ssh_public_key=ssh_key.public,
        client_ca_pem=client_ca.cert,
        server_cert_pem=issued.cert,
        server_key_pem=issued.key,
        enroll_url=enrollment.url(enroll_base_url, token),
    )
    return seed, portal_ca.fingerprint(issued.cert)


def seed_for(pvm: ProvisionedVm, enroll_base_url: str) -> dict[str, bytes]:
    """The NoCloud seed files for ``pvm`` (its earlier token and certificate stop working)."""
    seed, fingerprint = _seed(pvm, enroll_base_url)
    pvm.tls_fingerprint = fingerprint
    pvm.save(update_fields=["tls_fingerprint"])
    audit.record("provision.seed_iso", obj=pvm, project=pvm.request.project)
    profile = pvm.request.profile.settings if pvm.request.profile else {}
    return cloud_config.seed_files(seed, profile)


def clone(pvm: ProvisionedVm, si: vim.ServiceInstance, enroll_base_url: str) -> None:
    """Clone one VM with its own token and certificate in guestinfo, then power it on."""
    request = pvm.request
    # Claimed once: a redelivered or doubled task must not clone the same VM twice.
    if not ProvisionedVm.objects.filter(pk=pvm.pk, state=ProvisionedVm.State.QUEUED).update(
        state=ProvisionedVm.State.CLONING
    ):
        return
    seed, fingerprint = _seed(pvm, enroll_base_url)
    profile = request.profile.settings if request.profile else {}
    try:
        extra = cloud_config.guestinfo(seed, profile)
    except SettingsError as exc:
        # The profile was changed to something refused after the request was queued.
        _failed(pvm, f"profile {request.profile} is refused: {exc}; nothing was cloned")
        return
    set_state(pvm, ProvisionedVm.State.CLONING, tls_fingerprint=fingerprint)
    try:
        template = _template(si, request.template)
        task = template.CloneVM_Task(
            folder=_folder(request, si, template), name=pvm.name, spec=clone_spec(request, si, template)
        )
        WaitForTask(task)
        new_vm = task.info.result
        pvm.moref = new_vm._moId
        pvm.save(update_fields=["moref"])
        WaitForTask(new_vm.ReconfigVM_Task(spec=config_spec(request, extra)))
        set_state(pvm, ProvisionedVm.State.POWERING_ON)
        WaitForTask(new_vm.PowerOnVM_Task())
    except (vmodl.MethodFault, ProvisionError) as exc:
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
    spec = vim.vm.ConfigSpec(
        extraConfig=[vim.option.OptionValue(key=k, value="") for k in SECRET_GUESTINFO_KEYS]
    )
    try:
        with vsphere.session(vcenter) as si:
            WaitForTask(vim.VirtualMachine(pvm.moref, si._stub).ReconfigVM_Task(spec=spec))
    except (vsphere.VSphereError, vmodl.MethodFault) as exc:
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


def _what_vcenter_knows(si: vim.ServiceInstance, moref: str) -> str:
    vm = vim.VirtualMachine(moref, si._stub)
    try:
        power = vm.runtime.powerState
        guest = vm.guest
        ip = (guest.ipAddress if guest else "") or "none"
        tools = (guest.toolsRunningStatus if guest else "") or "unknown"
    except vmodl.fault.ManagedObjectNotFound:
        return "the VM no longer exists in vCenter"
    return f"power {power}, guest IP {ip}, VMware Tools {tools}"


def fail_overdue(now: Any = None) -> list[int]:
    """Mark failed, with what vCenter knows, every VM whose enrollment time ran out."""
    from django.utils import timezone

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
                    known = _what_vcenter_knows(si, pvm.moref)
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
    import asyncio
    import logging

    from asgiref.sync import sync_to_async

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
            vm = vim.VirtualMachine(pvm.moref, si._stub)
            try:
                if vm.runtime.powerState != "poweredOff":
                    WaitForTask(vm.PowerOffVM_Task())
                WaitForTask(vm.Destroy_Task())
            except vmodl.fault.ManagedObjectNotFound:
                pass  # already gone: deleting it is done
            except vmodl.MethodFault as exc:
                raise ProvisionError(
                    f"vCenter refused to delete {pvm.name}: {exc.msg or type(exc).__name__}"
                ) from None
    audit.record(
        "provision.delete_vm", obj=pvm, project=pvm.request.project, actor=actor, before={"moref": pvm.moref}
    )
    pvm.moref = ""
    set_state(pvm, ProvisionedVm.State.FAILED, "Deleted from vCenter.", moref="")


# --- kickstart installs ------------------------------------------------------------------------


def new_kickstart(project: Any, name: str, requester: Any, profile: Any = None) -> tuple[ProvisionedVm, str]:
    """A one-host request installed from Photon's ISO; returns it and its one-time kickstart token."""
    import hashlib
    import secrets

    names = expand_names(name, 1)
    request = ProvisionRequest(
        project=project, requester=requester, vcenter=None, count=1, name_pattern=names[0], profile=profile
    )
    check_quota(request)
    taken = {n.lower() for n in Host.objects.filter(project=project).values_list("name", flat=True)}
    if names[0] in taken:
        raise ProvisionError(f"A host named {names[0]} exists in this project already.")
    request.save()
    token = secrets.token_urlsafe(32)
    pvm = ProvisionedVm.objects.create(
        request=request,
        name=names[0],
        instance_id=f"portal-{uuid.uuid4()}",
        token_hash=f"unissued-{uuid.uuid4().hex}"[:64],
        token_expires=enrollment.expiry(),
        kickstart_hash=hashlib.sha256(token.encode()).hexdigest(),
        state=ProvisionedVm.State.WAITING,
        detail="Waiting for the installer to fetch its kickstart.",
    )
    audit.record("provision.kickstart", obj=pvm, project=project, actor=requester)
    return pvm, token


def kickstart_for(token: str, enroll_base_url: str) -> dict[str, Any]:
    """The kickstart behind a one-time token; served once (an installer that retries gets a new URL)."""
    import hashlib

    from django.utils import timezone

    digest = hashlib.sha256(token.encode()).hexdigest()
    pvm = (
        ProvisionedVm.objects.select_related("request__project", "request__profile")
        .filter(kickstart_hash=digest)
        .first()
        if token
        else None
    )
    if pvm is None:
        raise enrollment.EnrollmentRefused("unknown kickstart token")
    if pvm.token_expires <= timezone.now():
        raise enrollment.EnrollmentRefused("the kickstart token has expired")
    if not ProvisionedVm.objects.filter(pk=pvm.pk, kickstart_used__isnull=True).update(
        kickstart_used=timezone.now()
    ):
        events.notify_repeated(
            f"kickstart-refused:{pvm.pk}",
            f"Kickstart of {pvm.name} refused: the URL was already used",
            severity="warning",
            obj=pvm,
            project=pvm.request.project_id,
        )
        raise enrollment.EnrollmentRefused("the kickstart URL was already used")
    seed, fingerprint = _seed(pvm, enroll_base_url)
    set_state(
        pvm,
        ProvisionedVm.State.WAITING,
        "Installing; waiting for the host to phone home.",
        tls_fingerprint=fingerprint,
    )
    profile = pvm.request.profile.settings if pvm.request.profile else {}
    return cloud_config.kickstart(seed, profile)


# --- the seed ISO on vSphere ---------------------------------------------------------------------

SEED_FOLDER = "photon-portal-seeds"


def _datacenter_of(entity: Any) -> Any:
    while entity is not None and not isinstance(entity, vim.Datacenter):
        entity = entity.parent
    return entity


def _datastore_url(vcenter: Any, datastore: Any, path: str) -> tuple[str, str, str]:
    """(host, port, request path) of a file on ``datastore`` through vCenter's /folder service."""
    from urllib.parse import quote, urlencode

    host, port = vsphere.endpoint(vcenter.url)
    datacenter = _datacenter_of(datastore.parent) if hasattr(datastore, "parent") else None
    query = urlencode({"dcPath": datacenter.name if datacenter else "", "dsName": datastore.name})
    return host, str(port), f"/folder/{quote(path)}?{query}"


def datastore_file(
    vcenter: Any, si: vim.ServiceInstance, datastore: Any, path: str, data: bytes | None = None
) -> bytes:
    """PUT ``data`` to (or, with None, GET) a datastore file, over the pinned TLS connection."""
    import http.client

    host, port, url = _datastore_url(vcenter, datastore, path)
    connection = http.client.HTTPSConnection(
        host, int(port), context=vsphere.pinned_context(vcenter.certificate), timeout=vsphere.TIMEOUT
    )
    try:
        headers = {"Cookie": si._stub.cookie}
        if data is None:
            connection.request("GET", url, headers=headers)
        else:
            headers["Content-Type"] = "application/octet-stream"
            connection.request("PUT", url, body=data, headers=headers)
        response = connection.getresponse()
        body = response.read()
        if response.status >= 300:
            raise ProvisionError(f"vCenter answered {response.status} for the datastore file {path}")
        return body
    finally:
        connection.close()


def attach_seed_iso(pvm: ProvisionedVm, si: vim.ServiceInstance, iso: bytes) -> str:
    """Upload ``iso`` beside the VM and connect its CD-ROM to it; returns ``[datastore] path``."""
    vm = vim.VirtualMachine(pvm.moref, si._stub)
    datastore = vim.Datastore(pvm.request.datastore, si._stub) if pvm.request.datastore else vm.datastore[0]
    path = f"{SEED_FOLDER}/{pvm.name}-seed.iso"
    datastore_file(pvm.request.vcenter, si, datastore, path, iso)
    file_name = f"[{datastore.name}] {path}"
    devices = vm.config.hardware.device
    cdrom = next((d for d in devices if isinstance(d, vim.vm.device.VirtualCdrom)), None)
    change = vim.vm.device.VirtualDeviceSpec()
    if cdrom is None:
        ide = next(
            d
            for d in devices
            if isinstance(d, vim.vm.device.VirtualIDEController) and len(d.device or []) < 2
        )
        cdrom = vim.vm.device.VirtualCdrom(controllerKey=ide.key, unitNumber=len(ide.device or []), key=-1)
        change.operation = vim.vm.device.VirtualDeviceSpec.Operation.add
    else:
        change.operation = vim.vm.device.VirtualDeviceSpec.Operation.edit
    cdrom.backing = vim.vm.device.VirtualCdrom.IsoBackingInfo(fileName=file_name)
    cdrom.connectable = vim.vm.device.VirtualDevice.ConnectInfo(
        startConnected=True, connected=True, allowGuestControl=False
    )
    change.device = cdrom
    WaitForTask(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(deviceChange=[change])))
    audit.record("provision.attach_seed_iso", obj=pvm, project=pvm.request.project, after={"file": file_name})
    return file_name
