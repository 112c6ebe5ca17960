"""The dashboard's vSphere card: the VMs a person may see by power state, and any
vCenter the portal cannot read (registered in ``portal.dashboard`` by the hosts app)."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Q

from hosts.models import VCenter, VirtualMachine
from hosts.models.vsphere import PowerState
from hosts.vsphere.announce import inventory_topics
from portal import access
from portal.dashboard import Card


def build(user: Any) -> dict[str, Any] | None:
    admin = access.is_admin(user)
    vms = VirtualMachine.objects.visible_to(user).filter(gone=False, is_template=False)
    counts = vms.aggregate(
        total=Count("pk"),
        on=Count("pk", filter=Q(power_state=PowerState.ON)),
        off=Count("pk", filter=Q(power_state=PowerState.OFF)),
        suspended=Count("pk", filter=Q(power_state=PowerState.SUSPENDED)),
        photon=Count("pk", filter=Q(is_photon=True)),
    )
    # Only Admins see vCenters themselves (their addresses and errors); members see VMs.
    vcenters = list(VCenter.objects.filter(enabled=True).order_by("name")) if admin else []
    if not admin and not counts["total"]:
        return None
    return {
        "counts": counts,
        "vcenters": vcenters,
        "unreachable": [v for v in vcenters if v.last_error],
        "is_admin": admin,
    }


CARD = Card(
    name="vsphere",
    title="vSphere",
    url_name="hosts:vsphere",
    template="hosts/vsphere/partials/dashboard_card.html",
    build=build,
    topics=inventory_topics,
    order=20,
)
