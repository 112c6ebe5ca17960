"""Reading a vCenter's inventory: the whole of it for a sync (one container view, one
filter, paged answers), a few VMs again after a change, the placement tree the
provisioning form offers, and every VM name."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from pyVmomi import vim

from hosts.vsphere.client.collector import PAGE_SIZE, PC, Counter, container_filter, retrieve

log = logging.getLogger(__name__)

VM_PROPERTIES = [
    "name",
    "parent",
    "runtime.powerState",
    "runtime.host",
    "config.guestId",
    "config.guestFullName",
    "config.hardware.numCPU",
    "config.hardware.memoryMB",
    "config.annotation",
    "config.instanceUuid",
    "config.template",
    "guest.ipAddress",
    "guest.hostName",
    "guest.net",
    "guest.toolsRunningStatus",
    "customValue",
    "snapshot",
]
#: Per type: the properties read. Folders and compute resources only to place
#: hosts and VMs in their datacenter, cluster and folder.
PROPERTIES: dict[type, list[str]] = {
    vim.Folder: ["name", "parent"],
    vim.Datacenter: ["name", "parent"],
    vim.ComputeResource: ["name", "parent"],
    vim.HostSystem: [
        "name",
        "parent",
        "runtime.connectionState",
        "runtime.powerState",
        "runtime.inMaintenanceMode",
    ],
    vim.Datastore: ["name", "parent", "summary.type", "summary.capacity", "summary.freeSpace"],
    vim.VirtualMachine: VM_PROPERTIES,
}


#: Managed object type -> the inventory section it is read into.
SECTIONS = {
    "VirtualMachine": "vm",
    "HostSystem": "host",
    "Datastore": "datastore",
    "ComputeResource": "compute",
    "ClusterComputeResource": "compute",
    "Datacenter": "datacenter",
    "Folder": "folder",
}


def read_inventory(
    si: vim.ServiceInstance,
    *,
    page_size: int = PAGE_SIZE,
    counter: Counter | None = None,
    on_page: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """{section: {moref: {property: value}}} for the whole inventory, and custom field names."""
    content = si.RetrieveContent()
    inventory: dict[str, Any] = {section: {} for section in set(SECTIONS.values())}
    inventory["custom_field_names"] = custom_field_names(content)
    views = content.viewManager
    assert views is not None  # every vCenter's ServiceContent has its ViewManager
    view = views.CreateContainerView(content.rootFolder, list(PROPERTIES), True)
    try:
        spec = container_filter(view, PROPERTIES)
        for ref, props in retrieve(
            si, content.propertyCollector, [spec], page_size=page_size, counter=counter, on_page=on_page
        ):
            section = SECTIONS.get(ref.type)
            if section is not None:
                if ref.type == "ClusterComputeResource":
                    props["_cluster"] = True
                inventory[section][ref.moref] = props
    finally:
        try:
            view.Destroy()
        except Exception:
            log.debug("could not destroy a container view", exc_info=True)
    return inventory


def custom_field_names(content: vim.ServiceInstanceContent) -> dict[int, str]:
    manager = content.customFieldsManager
    if manager is None:
        return {}
    return {f.key: f.name for f in manager.field or []}


def read_vms(
    si: vim.ServiceInstance, morefs: Iterable[str], *, counter: Counter | None = None
) -> dict[str, dict[str, Any]]:
    """The VM properties of a few VMs, in one round trip (after the portal's own changes)."""
    spec = PC.FilterSpec(
        objectSet=[PC.ObjectSpec(obj=vim.VirtualMachine(m, si._stub), skip=False) for m in morefs],
        propSet=[PC.PropertySpec(type=vim.VirtualMachine, pathSet=VM_PROPERTIES)],
        reportMissingObjectsInResults=True,
    )
    pc = si.RetrieveContent().propertyCollector
    return {ref.moref: props for ref, props in retrieve(si, pc, [spec], counter=counter)}


def field_names(si: vim.ServiceInstance) -> dict[int, str]:
    """``custom_field_names`` of the vCenter behind ``si``."""
    return custom_field_names(si.RetrieveContent())


def version(si: vim.ServiceInstance) -> str:
    """The vCenter's full name and version, as it gives them."""
    return si.RetrieveContent().about.fullName


# --- Placement (hosts.vsphere.placement) ------------------------------------------------

PLACEMENT_PROPERTIES: dict[type, list[str]] = {
    vim.Datacenter: ["name", "parent", "vmFolder"],
    vim.Folder: ["name", "parent", "childType"],
    vim.ComputeResource: ["name", "parent", "resourcePool", "datastore", "network"],
    vim.ResourcePool: ["name", "parent", "owner"],
    vim.Network: ["name", "parent"],
    vim.dvs.DistributedVirtualPortgroup: ["tag"],
    vim.DistributedVirtualSwitch: ["config.uplinkPortgroup"],
    vim.Datastore: ["name", "parent", "summary.freeSpace", "summary.accessible"],
}


def read_placement(
    si: vim.ServiceInstance, *, counter: Counter | None = None
) -> dict[str, tuple[str, dict[str, Any]]]:
    """moref -> (type, properties) of every object of the placement tree."""
    content = si.RetrieveContent()
    objects: dict[str, tuple[str, dict[str, Any]]] = {}
    views = content.viewManager
    assert views is not None  # every vCenter's ServiceContent has its ViewManager
    view = views.CreateContainerView(content.rootFolder, list(PLACEMENT_PROPERTIES), True)
    try:
        spec = container_filter(view, PLACEMENT_PROPERTIES)
        for ref, props in retrieve(si, content.propertyCollector, [spec], counter=counter):
            kind, known = objects.get(ref.moref, (ref.type, {}))
            objects[ref.moref] = (kind, {**known, **props})
    finally:
        view.Destroy()
    return objects


# --- Names -------------------------------------------------------------------------------


def vm_names(si: vim.ServiceInstance) -> set[str]:
    """Every VM name vCenter has now (one paged property-collector read, not VM by VM)."""
    content = si.RetrieveContent()
    views = content.viewManager
    assert views is not None  # every vCenter's ServiceContent has its ViewManager
    view = views.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    try:
        spec = container_filter(view, {vim.VirtualMachine: ["name"]})
        return {
            str(props.get("name", "")).lower()
            for _ref, props in retrieve(si, content.propertyCollector, [spec])
        }
    finally:
        view.Destroy()
