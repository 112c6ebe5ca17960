"""Photon VMs and portal hosts: which VM is which host, linked only on proof (a clone the
portal made, an Admin's confirmation) or registered as a new host where the vCenter
auto-registers; every link and unlink audited."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.db import transaction

from hosts.models import Host, ProvisionedVm, VCenter, VirtualMachine
from portal import audit


def _host_part(docker_url: str) -> str:
    try:
        return urlsplit(docker_url).hostname or ""
    except ValueError:
        return ""


def link_photon_vms(vcenter: VCenter) -> tuple[list[int], list[int]]:
    """Link unlinked VMs to portal hosts, only where there is proof of which host a VM is.

    - A clone the portal made: the managed object id provisioning recorded for it in
      this vCenter, and the host it enrolled as.
    - With the vCenter's auto-register project set: a Photon VM with an address no
      portal host claims becomes a NEW host of that project (never an existing one).

    A name or an address alone is no proof: a VM's name is whatever its creator
    typed and its guest address whatever its guest reports, so matching them would
    hand a project's VM to any host, in any project, that happens to share them. Such
    VMs stay unlinked until an Admin confirms the link (``link_vm``). Every link is
    audited. Returns (VMs newly linked, hosts registered)."""
    unlinked = list(
        VirtualMachine.objects.filter(vcenter=vcenter, gone=False, host__isnull=True).only(
            "pk", "moref", "name", "ip_address", "ip_addresses", "guest_hostname", "is_photon", "vcenter_id"
        )
    )
    if not unlinked:
        return [], []
    proofs = dict(
        ProvisionedVm.objects.filter(
            request__vcenter=vcenter, host__isnull=False, moref__in=[vm.moref for vm in unlinked]
        ).values_list("moref", "host_id")
    )
    project = vcenter.auto_register_project
    claimed: set[str] = set()
    if project is not None:
        for address, docker_url in Host.objects.values_list("address", "docker_url"):
            claimed.update(a.lower() for a in (address, _host_part(docker_url)) if a)
    linked: list[tuple[VirtualMachine, str]] = []
    registered: list[int] = []
    for vm in unlinked:
        host_id = proofs.get(vm.moref)
        how = "provisioned clone"
        if host_id is None and project is not None and vm.is_photon and vm.ip_address:
            addresses = {a.lower() for a in [vm.ip_address, *(vm.ip_addresses or [])] if a}
            if addresses & claimed:
                # Some host already answers at that address: a second host would be a
                # copy, and linking the existing one is an Admin's call.
                continue
            host = _register(vm, project)
            registered.append(host.pk)
            claimed.update(addresses)
            host_id, how = host.pk, "registered as a new host"
        if host_id is not None:
            vm.host_id = host_id
            linked.append((vm, how))
    VirtualMachine.objects.bulk_update([vm for vm, _ in linked], ["host"], batch_size=500)
    if linked:
        hosts = Host.objects.select_related("project").in_bulk([vm.host_id for vm, _ in linked])
        for vm, how in linked:
            _audit_link(vm, hosts[vm.host_id], how, actor_name="vCenter sync")
    return [vm.pk for vm, _ in linked], registered


def _audit_link(vm: VirtualMachine, host: Host, how: str, *, actor: Any = None, actor_name: str = "") -> None:
    audit.record(
        "vsphere.vm_linked",
        obj=vm,
        project=host.project,
        actor=actor,
        actor_name=actor_name,
        after={"vm": vm.moref, "vcenter": vm.vcenter_id, "host": host.pk, "host_name": host.name, "by": how},
    )


class LinkError(Exception):
    """Why a link an Admin asked for cannot be made, in words they can act on."""


def link_vm(vm: VirtualMachine, host: Host, *, actor: Any) -> None:
    """An Admin's confirmation that ``vm`` is ``host`` (the proof the sync cannot have)."""
    with transaction.atomic():
        vm = VirtualMachine.objects.select_for_update().get(pk=vm.pk)
        if vm.host_id == host.pk:
            return
        if vm.host_id is not None:
            raise LinkError(f"{vm.name} is linked to another host already: unlink it first.")
        if vm.gone:
            raise LinkError(f"{vm.name} is gone from vCenter.")
        vm.host = host
        vm.save(update_fields=["host", "updated"])
        _audit_link(vm, host, "an Admin's confirmation", actor=actor)


def unlink_vm(vm: VirtualMachine, *, actor: Any) -> Host | None:
    """Take ``vm`` out of its host (and so out of that host's project); audited."""
    with transaction.atomic():
        vm = (
            VirtualMachine.objects.select_for_update(of=("self",))
            .select_related("host__project")
            .get(pk=vm.pk)
        )
        host = vm.host
        if host is None:
            return None
        vm.host = None
        vm.save(update_fields=["host", "updated"])
        audit.record(
            "vsphere.vm_unlinked",
            obj=vm,
            project=host.project,
            actor=actor,
            before={"vm": vm.moref, "vcenter": vm.vcenter_id, "host": host.pk, "host_name": host.name},
        )
    return host


def _register(vm: VirtualMachine, project: Any) -> Host:
    name = (vm.name or vm.guest_hostname or vm.ip_address)[:100]
    if Host.objects.filter(project=project, name=name).exists():
        name = f"{name[: 100 - len(vm.moref) - 1]}-{vm.moref}"
    host = Host.objects.create(
        project=project,
        name=name,
        address=vm.ip_address,
        # The engine's TLS endpoint on Photon; UNKNOWN until it answers and is trusted.
        docker_url=f"tcp://{vm.ip_address}:2376",
    )
    audit.record(
        "vsphere.host_registered",
        obj=host,
        project=project,
        actor_name="vCenter discovery",
        after={"vm": vm.moref, "vcenter": vm.vcenter_id, "address": vm.ip_address},
    )
    return host
