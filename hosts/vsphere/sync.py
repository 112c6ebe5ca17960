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
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from django.db import connections, router, transaction
from django.db.models import JSONField, Model
from django.template.loader import render_to_string
from django.utils import timezone
from pyVmomi import vim, vmodl

from hosts.models import Cluster, Datacenter, Datastore, EsxHost, Host, ProvisionedVm, VCenter, VirtualMachine
from hosts.models.vsphere import PHOTON_GUEST_ID
from hosts.vsphere.client import Ref, as_list, retrieve_page
from portal import audit, live

log = logging.getLogger(__name__)

PC = vmodl.query.PropertyCollector

#: Objects per page the portal asks for; a vCenter may send fewer.
PAGE_SIZE = 1000

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

VM_FIELDS = [
    "name",
    "power_state",
    "guest_id",
    "guest_full_name",
    "ip_address",
    "ip_addresses",
    "guest_hostname",
    "cpus",
    "memory_mb",
    "esx_host_id",
    "cluster_id",
    "datacenter_id",
    "folder",
    "annotation",
    "custom_fields",
    "tools_status",
    "instance_uuid",
    "snapshots",
    "is_photon",
    "is_template",
    "gone",
]


@dataclass
class Counter:
    """Property-collector round trips, for the tests and the benchmark."""

    calls: int = 0


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


# --- Reading -------------------------------------------------------------------


def container_filter(view: vim.view.ContainerView, properties: dict[type, list[str]]) -> PC.FilterSpec:
    return PC.FilterSpec(
        objectSet=[
            PC.ObjectSpec(
                obj=view,
                skip=True,
                selectSet=[
                    PC.TraversalSpec(name="view", path="view", skip=False, type=vim.view.ContainerView)
                ],
            )
        ],
        propSet=[PC.PropertySpec(type=kind, pathSet=paths) for kind, paths in properties.items()],
    )


def retrieve(
    si: vim.ServiceInstance,
    pc: vmodl.query.PropertyCollector,
    specs: list[PC.FilterSpec],
    *,
    page_size: int = PAGE_SIZE,
    counter: Counter | None = None,
    on_page: Callable[[int], None] | None = None,
) -> Iterator[tuple[Ref, dict[str, Any]]]:
    """Every object the specs select with its properties, a page per round trip."""
    counter = counter or Counter()
    page = retrieve_page(si, pc, "RetrievePropertiesEx", specs, PC.RetrieveOptions(maxObjects=page_size))
    counter.calls += 1
    pages = 1
    token: str | None = None
    try:
        while page is not None:
            token = page.token
            yield from page.objects
            if on_page is not None:
                on_page(pages)
            if not token:
                return
            page = retrieve_page(si, pc, "ContinueRetrievePropertiesEx", token)
            counter.calls += 1
            pages += 1
    except BaseException:
        # A read stopped early (a failed page, a caller that gives up, a closed
        # generator) would otherwise hold the rest of the result on vCenter.
        if token:
            _cancel(pc, token)
        raise


def _cancel(pc: vmodl.query.PropertyCollector, token: str) -> None:
    try:
        pc.CancelRetrievePropertiesEx(token)
    except Exception:
        log.debug("could not cancel a property retrieval", exc_info=True)


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
    view = content.viewManager.CreateContainerView(content.rootFolder, list(PROPERTIES), True)
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


# --- From vSphere values to rows ------------------------------------------------------


def _moref(value: Any) -> str | None:
    return value.moref if isinstance(value, Ref) else None


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def is_photon(guest_id: str, guest_full_name: str) -> bool:
    return guest_id == PHOTON_GUEST_ID or "photon" in guest_full_name.lower()


def _snapshots(info: Any) -> list[dict[str, str]]:
    found: list[dict[str, str]] = []
    pending = as_list(info.get("rootSnapshotList")) if isinstance(info, dict) else []
    while pending:
        node = pending.pop(0)
        found.append(
            {
                "moref": _moref(node.get("snapshot")) or "",
                "name": str(node.get("name") or ""),
                "created": str(node.get("createTime") or ""),
            }
        )
        pending.extend(as_list(node.get("childSnapshotList")))
    return found


def _addresses(net: Any, primary: str) -> list[str]:
    found = [ip for nic in as_list(net) if isinstance(nic, dict) for ip in as_list(nic.get("ipAddress"))]
    if primary and primary not in found:
        found.insert(0, primary)
    return list(dict.fromkeys(found))


def vm_fields(props: dict[str, Any], places: Placement, field_names: dict[int, str]) -> dict[str, Any]:
    """A VM row's fields from its properties (as RetrievePropertiesEx gives them)."""
    guest_id = props.get("config.guestId") or ""
    full_name = props.get("config.guestFullName") or ""
    ip = props.get("guest.ipAddress") or ""
    host = places.host(_moref(props.get("runtime.host")))
    return {
        "name": props.get("name") or "",
        "power_state": str(props.get("runtime.powerState") or ""),
        "guest_id": guest_id,
        "guest_full_name": full_name,
        "ip_address": ip,
        "ip_addresses": _addresses(props.get("guest.net"), ip),
        "guest_hostname": props.get("guest.hostName") or "",
        "cpus": props.get("config.hardware.numCPU"),
        "memory_mb": props.get("config.hardware.memoryMB"),
        "esx_host_id": host[0],
        "cluster_id": host[1],
        "datacenter_id": host[2],
        "folder": places.folder_name(_moref(props.get("parent"))),
        "annotation": props.get("config.annotation") or "",
        "custom_fields": {
            field_names.get(v.key, str(v.key)): getattr(v, "value", "")
            for v in props.get("customValue") or []
        },
        "tools_status": str(props.get("guest.toolsRunningStatus") or ""),
        "instance_uuid": props.get("config.instanceUuid") or "",
        "snapshots": _snapshots(props.get("snapshot")),
        "is_photon": is_photon(guest_id, full_name),
        "is_template": bool(props.get("config.template")),
        "gone": False,
    }


class Placement:
    """Where a host or VM sits: the database ids of its ESXi host, cluster, datacenter."""

    def __init__(self, vcenter: VCenter, folders: dict[str, dict[str, Any]] | None = None) -> None:
        self.hosts = {
            moref: (pk, cluster, datacenter)
            for pk, moref, cluster, datacenter in EsxHost.objects.filter(vcenter=vcenter).values_list(
                "pk", "moref", "cluster_id", "datacenter_id"
            )
        }
        self.folders = folders or {}

    def host(self, moref: str | None) -> tuple[int | None, int | None, int | None]:
        return self.hosts.get(moref or "", (None, None, None))

    def folder_name(self, moref: str | None) -> str:
        return str((self.folders.get(moref or "") or {}).get("name") or "")


# --- Writing ------------------------------------------------------------------------


def _upsert(
    model: type[Model], vcenter: VCenter, rows: dict[str, dict[str, Any]], fields: list[str]
) -> tuple[dict[str, int], list[int], list[int], list[int]]:
    """Insert new, update changed, report missing. Returns (moref->pk, created, changed, missing)."""
    existing = {
        row[1]: row
        for row in model.objects.filter(vcenter=vcenter).values_list("pk", "moref", *fields).iterator(2000)
    }
    new: list[str] = []
    changed = []
    for moref, values in rows.items():
        old = existing.get(moref)
        if old is None:
            new.append(moref)
        elif any(old[i + 2] != values[f] for i, f in enumerate(fields)):
            changed.append(model(pk=old[0], vcenter=vcenter, moref=moref, **values))
    update_fields = list(fields)
    if model is VirtualMachine:
        now = timezone.now()
        for obj in changed:
            obj.updated = now  # type: ignore[attr-defined]
        update_fields.append("updated")
    _insert(model, vcenter, {moref: rows[moref] for moref in new}, fields)
    model.objects.bulk_update(changed, update_fields, batch_size=500)
    ids = {moref: row[0] for moref, row in existing.items()}
    if new:
        # Thousands of new rows (a first sync): reading them all back beats a huge IN list.
        inserted = model.objects.filter(vcenter=vcenter)
        if len(new) < 100:
            inserted = inserted.filter(moref__in=new)
        ids.update(inserted.values_list("moref", "pk"))
    missing = [row[0] for moref, row in existing.items() if moref not in rows]
    return ids, [ids[moref] for moref in new], [o.pk for o in changed], missing


def _insert(model: type[Model], vcenter: VCenter, rows: dict[str, dict[str, Any]], fields: list[str]) -> None:
    """INSERT the new rows without a model instance per row (what bulk_create needs, and
    for thousands of VMs it costs more than the insert itself): PostgreSQL takes them in
    one COPY, other databases with executemany."""
    if not rows:
        return
    meta = model._meta
    connection = connections[router.db_for_write(model)]
    by_attname = {f.attname: f for f in meta.concrete_fields}
    # Columns the same on every row, prepared once.
    constant: dict[str, Any] = {"vcenter_id": vcenter.pk}
    if "updated" in by_attname:
        constant["updated"] = timezone.now()
    if "host_id" in by_attname:
        constant["host_id"] = None
    constant = {name: by_attname[name].get_db_prep_save(v, connection) for name, v in constant.items()}
    per_row = ["moref", *fields]
    prepare = [_preparer(by_attname[name], connection) for name in per_row]
    fixed = list(constant.values())
    params = [
        [
            *fixed,
            *(p(v) for p, v in zip(prepare, [moref, *(values[f] for f in fields)], strict=True)),
        ]
        for moref, values in rows.items()
    ]
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    names = ", ".join(quote(by_attname[name].column) for name in [*constant, *per_row])
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in params:
                    copy.write_row(row)
            return
        sql = f"INSERT INTO {table} ({names}) VALUES ({', '.join(['%s'] * (len(fixed) + len(per_row)))})"  # noqa: S608 - names from the model, values as parameters
        for start in range(0, len(params), 500):
            cursor.executemany(sql, params[start : start + 500])


_PLAIN = (str, int, float, bool, type(None))


def _preparer(model_field: Any, connection: Any) -> Callable[[Any], Any]:
    """A column's value as the database driver takes it. Django's get_db_prep_save per
    value is a third of a 2,000-VM insert; the values read from vSphere are plain
    strings, numbers and flags the drivers take as they are, and JSON is JSON text
    on every backend (and in a PostgreSQL COPY)."""
    if isinstance(model_field, JSONField):
        encoder = model_field.encoder

        def prepare_json(value: Any) -> Any:
            return None if value is None and model_field.null else json.dumps(value, cls=encoder)

        return prepare_json

    def prepare(value: Any) -> Any:
        if isinstance(value, _PLAIN):
            return value
        return model_field.get_db_prep_save(value, connection)

    return prepare


def _datacenter_of(moref: str | None, inventory: dict[str, dict[str, dict[str, Any]]]) -> str | None:
    """Walk parents (folders, compute resources) up to the datacenter."""
    seen = 0
    while moref and seen < 64:
        if moref in inventory["datacenter"]:
            return moref
        for kind in ("folder", "compute", "host", "datastore"):
            if moref in inventory[kind]:
                moref = _moref(inventory[kind][moref].get("parent"))
                break
        else:
            return None
        seen += 1
    return None


def write_inventory(vcenter: VCenter, inventory: dict[str, Any]) -> SyncResult:
    """Upsert everything ``read_inventory`` found, in one transaction."""
    result = SyncResult(vms=len(inventory["vm"]))
    with transaction.atomic():
        dc_ids, _, _, dc_missing = _upsert(
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
        cluster_ids, _, _, cluster_missing = _upsert(
            Cluster, vcenter, clusters, ["name", "is_cluster", "datacenter_id"]
        )
        hosts = {
            m: {
                "name": p.get("name") or "",
                "cluster_id": cluster_ids.get(_moref(p.get("parent")) or ""),
                "datacenter_id": dc_ids.get(_datacenter_of(m, inventory) or ""),
                "connection_state": str(p.get("runtime.connectionState") or ""),
                "power_state": str(p.get("runtime.powerState") or ""),
                "in_maintenance": bool(p.get("runtime.inMaintenanceMode")),
            }
            for m, p in inventory["host"].items()
        }
        _, _, _, host_missing = _upsert(
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
        _, _, _, store_missing = _upsert(
            Datastore, vcenter, stores, ["name", "datacenter_id", "kind", "capacity", "free_space"]
        )
        places = Placement(vcenter, inventory["folder"])
        names = inventory["custom_field_names"]
        vms = {m: vm_fields(p, places, names) for m, p in inventory["vm"].items()}
        _, result.created, result.changed, missing = _upsert(VirtualMachine, vcenter, vms, VM_FIELDS)
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
    si: vim.ServiceInstance,
    *,
    page_size: int = PAGE_SIZE,
    counter: Counter | None = None,
    on_page: Callable[[int], None] | None = None,
) -> SyncResult:
    counter = counter or Counter()
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


# --- Photon VMs and portal hosts -------------------------------------------------------


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


# --- Telling the browsers ------------------------------------------------------------


def topics_for(vm: VirtualMachine) -> tuple[list[str], list[str]]:
    """Who hears of a VM: (inventory topics, the VM page's topics). Admins follow all of
    vSphere; members the project of the VM's host."""
    lists, pages = ["vsphere:all"], [f"vsphere:vm:{vm.pk}"]
    if vm.host_id is not None:
        project = vm.host.project_id  # type: ignore[union-attr]
        lists.append(f"project:{project}:vms")
        pages.append(f"project:{project}:vm:{vm.pk}")
    return lists, pages


def announce(vm_ids: Iterable[int]) -> int:
    """Publish the current state of these VMs (after the database has it)."""
    ids = list(vm_ids)
    if not ids:
        return 0
    related = ("vcenter", "esx_host", "cluster", "datacenter", "host")
    for vm in VirtualMachine.objects.filter(pk__in=ids).select_related(*related):
        data = {
            "vm": vm.pk,
            "moref": vm.moref,
            "name": vm.name,
            "power_state": vm.power_state,
            "ip_address": vm.ip_address,
            "gone": vm.gone,
            "host": vm.host_id,
        }
        # Each page gets only the fragments it shows: live.js adds an unknown fragment to
        # the page's live list (a VM page's task list must not receive inventory rows).
        lists, pages = topics_for(vm)
        row = render_to_string("hosts/vsphere/partials/vm_row.html", {"vm": vm})
        summary = render_to_string("hosts/vsphere/partials/vm_summary.html", {"vm": vm})
        for topic in lists:
            live.publish(topic, html=row, data=data)
        for topic in pages:
            live.publish(topic, html=summary, data=data)
        if vm.host is not None:
            # The fleet dashboard's row shows the VM's power and placement: send it again.
            from hosts.fleet.status import publish as publish_host

            publish_host(vm.host)
    return len(ids)
