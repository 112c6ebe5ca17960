"""Which address an enrolling host is registered at: one the host itself reports AND,
for a VM the portal cloned, one vCenter reports for that very VM (its VMware Tools'
guest addresses, under the VM's managed object id, over the pinned connection).

The host's report is the ``address`` field of its phone-home post when it sends one,
else the connection's peer address (``REMOTE_ADDR``). A forwarded header
(X-Forwarded-For) is never read: anyone can send one. Behind a TLS proxy the peer is
the proxy, which vCenter does not confirm, so there the ASGI server must put the
host's address in ``REMOTE_ADDR`` (daphne ``--proxy-headers`` with the proxy
overwriting the header), or the host posts its address: either way vCenter's
confirmation is what makes it trusted, and an address vCenter does not report for
the VM is refused.

A host installed by kickstart has no vCenter VM to ask: its address is the peer's,
and a posted address must agree with it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from hosts.models import ProvisionedVm, VirtualMachine
from hosts.vsphere import client as vsphere
from hosts.vsphere.client import vm as vsphere_vm


class NotConfirmed(Exception):
    """The address cannot be bound; the message says why, for the event log."""


def normal(text: str) -> str:
    """``text`` as one canonical IP address (an IPv4-mapped IPv6 one as IPv4); "" if none."""
    try:
        address = ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return ""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return str(address)


def _normal_all(texts: Iterable[object]) -> list[str]:
    found = (normal(str(text)) for text in texts if text)
    return list(dict.fromkeys(a for a in found if a))


def inventory_addresses(pvm: ProvisionedVm) -> list[str]:
    """The VM's guest addresses as the portal's vSphere inventory last saw them."""
    if pvm.request.vcenter_id is None:
        return []  # no vCenter, no inventory row
    row = (
        VirtualMachine.objects.filter(vcenter_id=pvm.request.vcenter_id, moref=pvm.moref, gone=False)
        .values_list("ip_address", "ip_addresses")
        .first()
    )
    if row is None:
        return []
    primary, others = row
    return _normal_all([primary, *(others or [])])


def live_addresses(pvm: ProvisionedVm) -> list[str]:
    """The VM's guest addresses read from vCenter now (the inventory may lag a boot)."""
    vcenter = pvm.request.vcenter
    assert vcenter is not None
    try:
        with vsphere.session(vcenter) as si:
            found = vsphere_vm.guest_addresses(si, pvm.moref)
    except vsphere.NotFound:
        raise NotConfirmed(f"vCenter has no VM {pvm.moref} any more to confirm the address") from None
    except (vsphere.VSphereError, vsphere.MethodFault, OSError) as exc:
        detail = vsphere.fault_message(exc) if isinstance(exc, vsphere.MethodFault) else str(exc)
        raise NotConfirmed(f"vCenter could not be asked to confirm the address: {detail}") from None
    return _normal_all(found)


def confirm(pvm: ProvisionedVm, posted: str, peer: str) -> str:
    """The address to register ``pvm``'s host at; NotConfirmed with the reason otherwise."""
    claimed_text = posted.strip() or peer
    claimed = normal(claimed_text)
    if not claimed:
        what = "the address the host posted" if posted.strip() else "the connection's address"
        raise NotConfirmed(f"{what} ({claimed_text[:64] or 'none'}) is not an IP address")
    if not (pvm.moref and pvm.request.vcenter_id):
        # No vCenter VM behind this host (kickstart): only the connection says where it is.
        if posted.strip() and claimed != normal(peer):
            raise NotConfirmed(
                f"the host posted the address {claimed} but connected from {peer or 'nowhere'}, "
                "and no vCenter VM can confirm either"
            )
        return claimed
    if claimed in inventory_addresses(pvm):
        return claimed
    reported = live_addresses(pvm)
    if claimed in reported:
        return claimed
    raise NotConfirmed(
        f"{claimed} is not an address vCenter reports for {pvm.name} "
        f"(vCenter reports {', '.join(reported) or 'no address'} for it)"
    )
