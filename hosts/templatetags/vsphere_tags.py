"""Template helpers for vSphere: which VM a portal host is, how a power state reads."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from hosts.vsphere.announce import page_topic
from hosts.vsphere.services import action_buttons
from portal import access

register = template.Library()

_POWER = {
    "poweredOn": ("On", "label-success"),
    "poweredOff": ("Off", "label-danger"),
    "suspended": ("Suspended", "label-warning"),
}


@register.simple_tag
def vm_page_topic(vm: Any, user: Any) -> str:
    """The live topic of a VM's summary for this person (as its own page follows)."""
    return page_topic(vm, user)


@register.simple_tag
def vm_controls(vm: Any, user: Any) -> dict[str, Any]:
    """A VM's power and snapshot buttons for this person, as its page has them, for the page of
    the host it is (``partials/vm_actions.html`` reads ``actions`` and ``can_operate``)."""
    return {
        "actions": action_buttons(vm),
        "can_operate": access.can(user, "vm.operate", vm.host.project_id if vm.host_id else None),
    }


@register.simple_tag
def host_vm(host: Any) -> Any:
    """The VM a host is (not gone), or None. Reads ``host.row_vms`` when a page of rows
    prefetched it (hosts.fleet.rows), so a page pays no query per row; else ``host.vms``."""
    if host is None or getattr(host, "pk", None) is None:
        return None
    vms = getattr(host, "row_vms", None)
    return next((vm for vm in (host.vms.all() if vms is None else vms) if not vm.gone), None)


@register.simple_tag
def power_label(vm: Any) -> SafeString:
    """A VM's power state as a coloured label ("Gone" for a VM vCenter no longer has)."""
    if getattr(vm, "gone", False):
        return mark_safe('<span class="label power-label" data-power="gone">Gone</span>')
    state = getattr(vm, "power_state", "")
    label, css = _POWER.get(state, ("Unknown", ""))
    return format_html('<span class="label {} power-label" data-power="{}">{}</span>', css, state, label)
