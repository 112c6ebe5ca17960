"""Telling the browsers: a VM's current state published to the inventory lists and VM
pages that show it (and to its host's fleet row)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.template.loader import render_to_string

from hosts.fleet.status import publish as publish_host
from hosts.models import VirtualMachine
from portal import access, live


def inventory_topics(user: Any) -> list[str]:
    """What a person's inventory views follow: all of vSphere for Admins, their projects' VMs
    for members (the inventory page, the dashboard's card)."""
    if access.is_admin(user):
        return ["vsphere:all"]
    return [f"project:{p.pk}:vms" for p in access.projects(user, "vm.view")]


def page_topic(vm: VirtualMachine, user: Any) -> str:
    """The topic a page showing ``vm`` to ``user`` follows (one of ``topics_for``'s pages)."""
    if access.is_admin(user) or vm.host_id is None:
        return f"vsphere:vm:{vm.pk}"
    return f"project:{vm.host.project_id}:vm:{vm.pk}"  # type: ignore[union-attr]


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
            publish_host(vm.host)
    return len(ids)
