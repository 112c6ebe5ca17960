"""After enrollment: the clone's guestinfo no longer needs the secrets it carried."""

from __future__ import annotations

from hosts.models import ProvisionedVm
from hosts.vsphere import client as vsphere
from hosts.vsphere.client import vm as vsphere_vm
from portal import events

#: guestinfo keys whose values carry secrets (the user data holds the host's TLS server key),
#: emptied once the host has enrolled. The metadata stays: with its instance-id kept, cloud-init
#: does not take a later boot for a new instance (new SSH host keys that no longer match the pin).
SECRET_GUESTINFO_KEYS = ("guestinfo.userdata", "guestinfo.userdata.encoding")


def clear_guestinfo(pvm: ProvisionedVm, *, notify: bool = True) -> bool:
    """Empty ``pvm``'s secret guestinfo keys in vCenter; best effort (an event says when it
    failed, unless ``notify`` is False: a retry of a failure already told)."""
    vcenter = pvm.request.vcenter
    if vcenter is None or not pvm.moref:
        return False  # a kickstart install: no guestinfo
    try:
        with vsphere.session(vcenter) as si:
            vsphere_vm.set_extra_config(si, pvm.moref, dict.fromkeys(SECRET_GUESTINFO_KEYS, ""))
    except (vsphere.VSphereError, vsphere.MethodFault) as exc:
        if not notify:
            return False
        message = getattr(exc, "msg", "") or str(exc) or type(exc).__name__
        events.notify(
            f"{pvm.name} enrolled, but its guestinfo still holds its TLS key: clearing it failed ({message})",
            severity="warning",
            obj=pvm,
            project=pvm.request.project_id,
        )
        return False
    return True
