"""Template helpers for vSphere: which VM a portal host is, how a power state reads."""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()

_POWER = {
    "poweredOn": ("On", "label-success"),
    "poweredOff": ("Off", "label-danger"),
    "suspended": ("Suspended", "label-warning"),
}


@register.simple_tag
def host_vm(host: Any) -> Any:
    """The VM a host is (not gone), or None. Reads ``host.row_vms`` when a page of rows
    prefetched it (hosts.fleet.rows), so a page pays no query per row; else ``host.vms``."""
    if host is None or getattr(host, "pk", None) is None:
        return None
    vms = getattr(host, "row_vms", None)
    return next((vm for vm in (host.vms.all() if vms is None else vms) if not vm.gone), None)


@register.inclusion_tag("hosts/vsphere/partials/power_label.html")
def power_label(vm: Any) -> dict[str, Any]:
    label, css = _POWER.get(getattr(vm, "power_state", ""), ("Unknown", ""))
    return {"vm": vm, "label": label, "css": css, "gone": getattr(vm, "gone", False)}
