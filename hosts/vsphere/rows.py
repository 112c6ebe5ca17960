"""From vSphere values to rows: a VM row's fields from its properties as the property
collector gives them, and where a VM sits (its ESXi host, cluster, datacenter, folder)."""

from __future__ import annotations

from typing import Any

from hosts.models import EsxHost, VCenter
from hosts.models.vsphere import PHOTON_GUEST_ID
from hosts.vsphere.client.collector import Ref, as_list

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


def moref_of(value: Any) -> str | None:
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
                "moref": moref_of(node.get("snapshot")) or "",
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
    host = places.host(moref_of(props.get("runtime.host")))
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
        "folder": places.folder_name(moref_of(props.get("parent"))),
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
