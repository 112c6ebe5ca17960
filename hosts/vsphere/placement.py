"""Where a clone may go in a vCenter: datacenters, clusters and their resource pools,
VM folders, networks and datastores, read live for the provisioning form.

One property-collector read of the whole placement tree (never an object at a
time), kept a minute in the cache: the form is drawn, redrawn as the person picks
a datacenter, and checked on submit, all from the same read. Resource pools,
folders and networks are not part of the synced inventory (hosts.vsphere.sync),
which keeps what the dashboards show.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.core.cache import cache
from pyVmomi import vim

from hosts.models import VCenter
from hosts.vsphere import client as vsphere
from hosts.vsphere import sync as vsphere_sync

#: Seconds a read is reused: long enough for one person filling the form in.
CACHE_SECONDS = 60
UPLINK_TAG = "SYSTEM/DVS.UPLINKPG"

PROPERTIES: dict[type, list[str]] = {
    vim.Datacenter: ["name", "parent", "vmFolder"],
    vim.Folder: ["name", "parent", "childType"],
    vim.ComputeResource: ["name", "parent", "resourcePool", "datastore", "network"],
    vim.ResourcePool: ["name", "parent", "owner"],
    vim.Network: ["name", "parent"],
    vim.dvs.DistributedVirtualPortgroup: ["tag"],
    vim.DistributedVirtualSwitch: ["config.uplinkPortgroup"],
    vim.Datastore: ["name", "parent", "summary.freeSpace", "summary.accessible"],
}


@dataclass(frozen=True)
class Place:
    moref: str
    #: What people see: a folder's or pool's path, a cluster's name, a datastore's free space.
    label: str
    datacenter: str
    #: For a pool, its cluster (or standalone host); for a cluster, itself.
    compute: str = ""
    kind: str = ""


@dataclass
class Placement:
    datacenters: dict[str, str] = field(default_factory=dict)
    pools: list[Place] = field(default_factory=list)
    folders: list[Place] = field(default_factory=list)
    networks: list[Place] = field(default_factory=list)
    datastores: list[Place] = field(default_factory=list)
    #: Compute resource moref -> the datastores and networks its hosts reach.
    reach: dict[str, set[str]] = field(default_factory=dict)
    #: Datacenter moref -> its root VM folder.
    vm_roots: dict[str, str] = field(default_factory=dict)
    #: Cluster (or standalone host) moref -> its name.
    computes: dict[str, str] = field(default_factory=dict)

    def find(self, section: str, moref: str) -> Place | None:
        return next((p for p in getattr(self, section) if p.moref == moref), None)

    def grouped(self, section: str, datacenter: str = "") -> list[tuple[str, list[tuple[str, str]]]]:
        """Choices for a select, one group per datacenter (or only ``datacenter``'s)."""
        groups: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for place in getattr(self, section):
            if not datacenter or place.datacenter == datacenter:
                groups[self.datacenters.get(place.datacenter, "?")].append((place.moref, place.label))
        return sorted(groups.items())


def _ref(value: Any) -> str:
    return value.moref if isinstance(value, vsphere.Ref) else ""


def read(si: vim.ServiceInstance, *, counter: vsphere_sync.Counter | None = None) -> Placement:
    content = si.RetrieveContent()
    objects: dict[str, tuple[str, dict[str, Any]]] = {}
    views = content.viewManager
    assert views is not None  # every vCenter's ServiceContent has its ViewManager
    view = views.CreateContainerView(content.rootFolder, list(PROPERTIES), True)
    try:
        spec = vsphere_sync.container_filter(view, PROPERTIES)
        for ref, props in vsphere_sync.retrieve(si, content.propertyCollector, [spec], counter=counter):
            kind, known = objects.get(ref.moref, (ref.type, {}))
            objects[ref.moref] = (kind, {**known, **props})
    finally:
        view.Destroy()
    return _arrange(objects)


def _arrange(objects: dict[str, tuple[str, dict[str, Any]]]) -> Placement:
    placement = Placement()

    def props(moref: str) -> dict[str, Any]:
        return objects.get(moref, ("", {}))[1]

    def datacenter_of(moref: str) -> str:
        for _ in range(64):  # a bound, not a count: parents always end at the root folder
            kind, values = objects.get(moref, ("", {}))
            if kind == "Datacenter" or not moref:
                return moref
            moref = _ref(values.get("parent"))
        return ""

    def path(moref: str, stop: str) -> list[str]:
        names: list[str] = []
        while moref and moref != stop and len(names) < 64:
            names.append(str(props(moref).get("name", "")))
            moref = _ref(props(moref).get("parent"))
        return names[::-1]

    uplinks = {
        _ref(pg)
        for kind, values in objects.values()
        if "config.uplinkPortgroup" in values
        for pg in vsphere.as_list(values["config.uplinkPortgroup"])
    }
    for moref, (kind, values) in objects.items():
        if kind == "Datacenter":
            placement.datacenters[moref] = str(values.get("name", ""))
            placement.vm_roots[moref] = _ref(values.get("vmFolder"))
        elif kind in ("ClusterComputeResource", "ComputeResource"):
            reach = {_ref(d) for d in vsphere.as_list(values.get("datastore"))} | {
                _ref(n) for n in vsphere.as_list(values.get("network"))
            }
            placement.reach[moref] = reach
            placement.computes[moref] = str(values.get("name", ""))
    for moref, (kind, values) in sorted(objects.items(), key=lambda item: str(item[1][1].get("name", ""))):
        datacenter = datacenter_of(moref)
        if not datacenter:
            continue
        if kind == "ResourcePool":
            owner = _ref(values.get("owner"))
            owner_name = str(props(owner).get("name", ""))
            below = path(moref, owner)[1:]  # the owner's root pool is the cluster itself
            label = " / ".join([owner_name, *below]) if below else f"{owner_name} (the whole cluster)"
            placement.pools.append(Place(moref, label, datacenter, compute=owner))
        elif kind == "Folder" and "VirtualMachine" in vsphere.as_list(values.get("childType")):
            root = placement.vm_roots.get(datacenter, "")
            label = "/".join(path(moref, root)) or "(the datacenter's VM folder)"
            placement.folders.append(Place(moref, label, datacenter))
        elif kind in ("Network", "DistributedVirtualPortgroup", "OpaqueNetwork"):
            tags = {t.get("key") for t in vsphere.as_list(values.get("tag")) if isinstance(t, dict)}
            if moref in uplinks or UPLINK_TAG in tags:
                continue  # a switch's uplinks carry no VM traffic
            placement.networks.append(Place(moref, str(values.get("name", "")), datacenter, kind=kind))
        elif kind == "Datastore" and values.get("summary.accessible", True):
            free = int(values.get("summary.freeSpace") or 0)
            label = f"{values.get('name', '')} ({free / 2**30:.1f} GB free)"
            placement.datastores.append(Place(moref, label, datacenter))
    placement.pools.sort(key=lambda p: p.label)
    placement.folders.sort(key=lambda p: p.label)
    return placement


def for_vcenter(vcenter: VCenter) -> Placement:
    """The placement of ``vcenter``, from the cache or one read (raises vsphere.VSphereError)."""
    # Its creation time too: a vCenter removed and added again (same id on SQLite) is read anew.
    created = vcenter.created.timestamp() if vcenter.created else 0
    key = f"hosts:placement:{vcenter.pk}:{created}"
    found = cache.get(key)
    if isinstance(found, Placement):
        return found
    with vsphere.session(vcenter) as si:
        placement = read(si)
    cache.set(key, placement, CACHE_SECONDS)
    return placement
