"""Cloning a VM from a template in vCenter: where the clone goes (pool, datastore,
folder, network), the clone itself, and the size and guestinfo applied before power-on."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyVim.task import WaitForTask
from pyVmomi import vim

from hosts.vsphere.client import VSphereError
from hosts.vsphere.client.vm import first_nic

if TYPE_CHECKING:
    from hosts.models import ProvisionRequest


def clone_spec(
    request: ProvisionRequest, si: vim.ServiceInstance, template: vim.VirtualMachine
) -> vim.vm.CloneSpec:
    location = vim.vm.RelocateSpec()
    if request.resource_pool:
        location.pool = vim.ResourcePool(request.resource_pool, si._stub)
    elif template.config and template.config.template:
        # A template belongs to no pool; vCenter wants one: its host's cluster.
        host = template.runtime.host
        assert host is not None  # a template is registered on a host
        compute = host.parent
        assert isinstance(compute, vim.ComputeResource)  # a host's parent: its cluster or standalone resource
        location.pool = compute.resourcePool
    if request.datastore:
        location.datastore = vim.Datastore(request.datastore, si._stub)
    if request.network:
        location.deviceChange = [_connect_first_nic(request, si, template)]
    return vim.vm.CloneSpec(location=location, powerOn=False, template=False)


def _connect_first_nic(
    request: ProvisionRequest, si: vim.ServiceInstance, template: vim.VirtualMachine
) -> vim.vm.device.VirtualDeviceSpec:
    """The clone's first network adapter on the chosen network (a port group of a
    distributed switch, or a standard network)."""
    nic = first_nic(template)
    if nic is None:
        raise VSphereError(f"{template.name!r} has no network adapter to connect to the chosen network.")
    card = vim.vm.device.VirtualEthernetCard
    if request.placement.get("network_kind") == "DistributedVirtualPortgroup":
        group = vim.dvs.DistributedVirtualPortgroup(request.network, si._stub)
        switch = group.config.distributedVirtualSwitch
        assert switch is not None  # a distributed port group belongs to its switch
        nic.backing = card.DistributedVirtualPortBackingInfo(
            port=vim.dvs.PortConnection(portgroupKey=group.key, switchUuid=switch.uuid)
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


def folder(request: ProvisionRequest, si: vim.ServiceInstance, template: vim.VirtualMachine) -> vim.Folder:
    if request.folder:
        return vim.Folder(request.folder, si._stub)
    parent = template.parent
    assert isinstance(parent, vim.Folder)  # a template sits in a VM folder (only a vApp's VMs have none)
    return parent


def clone_vm(
    request: ProvisionRequest, si: vim.ServiceInstance, template: vim.VirtualMachine, name: str
) -> vim.VirtualMachine:
    """Clone ``template`` as ``name`` where ``request`` says, powered off; the new VM."""
    task = template.CloneVM_Task(
        folder=folder(request, si, template), name=name, spec=clone_spec(request, si, template)
    )
    WaitForTask(task)
    return task.info.result


def configure(vm: vim.VirtualMachine, request: ProvisionRequest, extra: dict[str, str]) -> None:
    WaitForTask(vm.ReconfigVM_Task(spec=config_spec(request, extra)))


def power_on(vm: vim.VirtualMachine) -> None:
    WaitForTask(vm.PowerOnVM_Task())
