"""A full read of a vCenter's inventory into the database, the way govc does it.

One container view over the root folder, one filter with a property spec per
type, and the property collector answers in pages (``RetrievePropertiesEx``,
then ``ContinueRetrievePropertiesEx`` while it hands back a token): a full sync
of M VMs costs about M / page size round trips. Touching VM attributes one by
one costs a round trip per attribute per VM, a hundred times slower: nothing here
does that.

Everything is read before anything is written, and the writes are bulk upserts
in one transaction (new rows in one COPY on PostgreSQL, executemany elsewhere):
a vCenter that dies in the middle of a sync leaves the database at its last good
state. VMs missing from a complete read are marked ``gone``, never deleted.

The read is hosts.vsphere.client.inventory's; here it is written, as rows
(hosts.vsphere.rows) in bulk (hosts.vsphere.upsert), and VMs linked to hosts
(hosts.vsphere.links).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone

from hosts.models import Cluster, Datacenter, Datastore, EsxHost, VCenter, VirtualMachine
from hosts.vsphere import client as vsphere
from hosts.vsphere.client.collector import PAGE_SIZE, Counter
from hosts.vsphere.client.inventory import read_inventory
from hosts.vsphere.links import link_photon_vms
from hosts.vsphere.rows import VM_FIELDS, Placement, moref_of, vm_fields
from hosts.vsphere.upsert import upsert
from portal.gc_pause import gc_paused


@dataclass
class SyncResult:
    vms: int = 0
    created: list[int] = field(default_factory=list)
    changed: list[int] = field(default_factory=list)
    gone: list[int] = field(default_factory=list)
    linked: list[int] = field(default_factory=list)
    registered: list[int] = field(default_factory=list)
    round_trips: int = 0

    @property
    def touched(self) -> list[int]:
        """VMs shown somewhere whose row changed (for live updates). New VMs are not on
        any page yet, and a first sync of thousands must not flood the channel layer."""
        return sorted({*self.changed, *self.gone, *self.linked})


def _datacenter_of(moref: str | None, inventory: dict[str, dict[str, dict[str, Any]]]) -> str | None:
    """Walk parents (folders, compute resources) up to the datacenter."""
    seen = 0
    while moref and seen < 64:
        if moref in inventory["datacenter"]:
            return moref
        for kind in ("folder", "compute", "host", "datastore"):
            if moref in inventory[kind]:
                moref = moref_of(inventory[kind][moref].get("parent"))
                break
        else:
            return None
        seen += 1
    return None


def write_inventory(vcenter: VCenter, inventory: dict[str, Any]) -> SyncResult:
    """Upsert everything ``read_inventory`` found, in one transaction."""
    result = SyncResult(vms=len(inventory["vm"]))
    with transaction.atomic():
        dc_ids, _, _, dc_missing = upsert(
            Datacenter,
            vcenter,
            {m: {"name": p.get("name") or ""} for m, p in inventory["datacenter"].items()},
            ["name"],
        )
        clusters = {
            m: {
                "name": p.get("name") or "",
                "is_cluster": bool(p.get("_cluster")),
                "datacenter_id": dc_ids.get(_datacenter_of(m, inventory) or ""),
            }
            for m, p in inventory["compute"].items()
        }
        cluster_ids, _, _, cluster_missing = upsert(
            Cluster, vcenter, clusters, ["name", "is_cluster", "datacenter_id"]
        )
        hosts = {
            m: {
                "name": p.get("name") or "",
                "cluster_id": cluster_ids.get(moref_of(p.get("parent")) or ""),
                "datacenter_id": dc_ids.get(_datacenter_of(m, inventory) or ""),
                "connection_state": str(p.get("runtime.connectionState") or ""),
                "power_state": str(p.get("runtime.powerState") or ""),
                "in_maintenance": bool(p.get("runtime.inMaintenanceMode")),
            }
            for m, p in inventory["host"].items()
        }
        _, _, _, host_missing = upsert(
            EsxHost,
            vcenter,
            hosts,
            ["name", "cluster_id", "datacenter_id", "connection_state", "power_state", "in_maintenance"],
        )
        stores = {
            m: {
                "name": p.get("name") or "",
                "datacenter_id": dc_ids.get(_datacenter_of(m, inventory) or ""),
                "kind": p.get("summary.type") or "",
                "capacity": p.get("summary.capacity"),
                "free_space": p.get("summary.freeSpace"),
            }
            for m, p in inventory["datastore"].items()
        }
        _, _, _, store_missing = upsert(
            Datastore, vcenter, stores, ["name", "datacenter_id", "kind", "capacity", "free_space"]
        )
        places = Placement(vcenter, inventory["folder"])
        names = inventory["custom_field_names"]
        vms = {m: vm_fields(p, places, names) for m, p in inventory["vm"].items()}
        _, result.created, result.changed, missing = upsert(VirtualMachine, vcenter, vms, VM_FIELDS)
        if missing:
            result.gone = list(
                VirtualMachine.objects.filter(pk__in=missing, gone=False).values_list("pk", flat=True)
            )
            VirtualMachine.objects.filter(pk__in=result.gone).update(gone=True, updated=timezone.now())
        # Infrastructure that vanished is only a place; VMs keep their row and lose the link.
        for model, pks in (
            (EsxHost, host_missing),
            (Datastore, store_missing),
            (Cluster, cluster_missing),
            (Datacenter, dc_missing),
        ):
            if pks:
                model.objects.filter(pk__in=pks).delete()
        result.linked, result.registered = link_photon_vms(vcenter)
        VCenter.objects.filter(pk=vcenter.pk).update(last_sync=timezone.now(), last_error="", connected=True)
    return result


def sync(
    vcenter: VCenter,
    si: vsphere.ServiceInstance,
    *,
    page_size: int = PAGE_SIZE,
    counter: Counter | None = None,
    on_page: Callable[[int], None] | None = None,
) -> SyncResult:
    counter = counter or Counter()
    with gc_paused():
        inventory = read_inventory(si, page_size=page_size, counter=counter, on_page=on_page)
        result = write_inventory(vcenter, inventory)
    result.round_trips = counter.calls
    return result


def apply_vm_properties(
    vcenter: VCenter, props_by_moref: dict[str, dict[str, Any]], field_names: dict[int, str]
) -> list[int]:
    """Upsert a few VMs re-read after an update or an action; the ids of rows that changed."""
    if not props_by_moref:
        return []
    with transaction.atomic():
        places = Placement(vcenter)
        rows = VirtualMachine.objects.filter(vcenter=vcenter, moref__in=list(props_by_moref))
        existing = {vm.moref: vm for vm in rows}
        touched: list[int] = []
        for moref, props in props_by_moref.items():
            values = vm_fields(props, places, field_names)
            vm = existing.get(moref)
            if vm is None:
                vm = VirtualMachine.objects.create(vcenter=vcenter, moref=moref, **values)
                touched.append(vm.pk)
                continue
            if not values["folder"]:
                values["folder"] = vm.folder  # a re-read does not fetch folders
            changed = [name for name, value in values.items() if getattr(vm, name) != value]
            if changed:
                for name in changed:
                    setattr(vm, name, values[name])
                vm.save(update_fields=[*changed, "updated"])
                touched.append(vm.pk)
        linked, _ = link_photon_vms(vcenter)
    return sorted({*touched, *linked})


def mark_gone(vcenter: VCenter, morefs: Iterable[str]) -> list[int]:
    vms = VirtualMachine.objects.filter(vcenter=vcenter, moref__in=list(morefs), gone=False)
    ids = list(vms.values_list("pk", flat=True))
    VirtualMachine.objects.filter(pk__in=ids).update(gone=True, updated=timezone.now())
    return ids
