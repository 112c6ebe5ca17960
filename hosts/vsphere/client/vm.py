"""One VM in vCenter: looking it up, what provisioning checks on a template, actions on
it (power, snapshots, guestinfo, destroy), its guest addresses and its events."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pyVim.task import WaitForTask
from pyVmomi import vim, vmodl

if TYPE_CHECKING:
    from hosts.models import VmTask


def ref(si: vim.ServiceInstance, moref: str) -> vim.VirtualMachine:
    """The VM ``moref`` (nothing is asked of vCenter until it is used)."""
    return vim.VirtualMachine(moref, si._stub)


def existing(si: vim.ServiceInstance, moref: str) -> vim.VirtualMachine:
    """The VM ``moref``; ``vmodl.fault.ManagedObjectNotFound`` if vCenter has none."""
    vm = vim.VirtualMachine(moref, si._stub)
    vm.name  # noqa: B018 -- touching it asks vCenter whether the VM exists
    return vm


def moref_of(obj: Any) -> str:
    """The managed object id of a VM or a task."""
    return obj._moId


def name(vm: vim.VirtualMachine) -> str:
    return vm.name


def guest_id(vm: vim.VirtualMachine) -> str:
    return vm.config.guestId if vm.config else ""


def is_template(vm: vim.VirtualMachine) -> bool:
    """vSphere's own flag, read live."""
    return bool(vm.config and vm.config.template)


def first_nic(template: vim.VirtualMachine) -> vim.vm.device.VirtualEthernetCard | None:
    devices = template.config.hardware.device if template.config else []
    return next((d for d in devices if isinstance(d, vim.vm.device.VirtualEthernetCard)), None)


def template_size(template: vim.VirtualMachine) -> int:
    """Bytes one clone may take: the storage summary, or, where vCenter has not
    computed one yet (a fresh template; vcsim always), its disks' provisioned size."""
    storage = template.summary.storage
    # int(): the stubs type both as pyVmomi's long, a subclass of int made at run time.
    used = (int(storage.committed) + int(storage.uncommitted)) if storage else 0
    if used:
        return int(used)
    devices = template.config.hardware.device if template.config else []
    return sum(
        int(d.capacityInBytes or d.capacityInKB * 1024)
        for d in devices
        if isinstance(d, vim.vm.device.VirtualDisk)
    )


def datastore_space(si: vim.ServiceInstance, moref: str) -> tuple[int, str]:
    """(free bytes, name) of the datastore ``moref``; ManagedObjectNotFound if it is gone."""
    datastore = vim.Datastore(moref, si._stub)
    free = datastore.summary.freeSpace or 0
    ds_name = datastore.name
    return free, ds_name


def set_extra_config(si: vim.ServiceInstance, moref: str, values: dict[str, str]) -> None:
    """Set (or, with "", empty) guestinfo and other extraConfig keys of the VM ``moref``."""
    spec = vim.vm.ConfigSpec(extraConfig=[vim.option.OptionValue(key=k, value=v) for k, v in values.items()])
    WaitForTask(vim.VirtualMachine(moref, si._stub).ReconfigVM_Task(spec=spec))


def what_vcenter_knows(si: vim.ServiceInstance, moref: str) -> str:
    vm = vim.VirtualMachine(moref, si._stub)
    try:
        power = vm.runtime.powerState
        guest = vm.guest
        ip = (guest.ipAddress if guest else "") or "none"
        tools = (guest.toolsRunningStatus if guest else "") or "unknown"
    except vmodl.fault.ManagedObjectNotFound:
        return "the VM no longer exists in vCenter"
    return f"power {power}, guest IP {ip}, VMware Tools {tools}"


def destroy(si: vim.ServiceInstance, moref: str) -> None:
    """Power off and destroy the VM ``moref``; one already gone is done. Other faults are raised."""
    vm = vim.VirtualMachine(moref, si._stub)
    try:
        if vm.runtime.powerState != "poweredOff":
            WaitForTask(vm.PowerOffVM_Task())
        WaitForTask(vm.Destroy_Task())
    except vmodl.fault.ManagedObjectNotFound:
        pass  # already gone: deleting it is done


def guest_addresses(si: vim.ServiceInstance, moref: str) -> list[object]:
    """Every address the VM's guest reports now, its primary one first."""
    guest = vim.VirtualMachine(moref, si._stub).guest
    found: list[object] = [guest.ipAddress] if guest else []
    for nic in (guest.net if guest else None) or []:
        found.extend(nic.ipAddress or [])
    return found


def start_action(vm: vim.VirtualMachine, task: VmTask) -> vim.Task | None:
    """Start the vSphere side of ``task``; None for ShutdownGuest, which is no task."""
    if task.action == "power_on":
        return vm.PowerOnVM_Task()
    if task.action == "power_off":
        return vm.PowerOffVM_Task()
    if task.action == "reset":
        return vm.ResetVM_Task()
    if task.action == "shutdown_guest":
        vm.ShutdownGuest()
        return None
    if task.action == "snapshot_create":
        return vm.CreateSnapshot_Task(
            name=task.argument, description="Taken from Photon Portal", memory=False, quiesce=False
        )
    if task.action == "snapshot_revert":
        snapshot = vim.vm.Snapshot(task.argument, vm._stub)
        return snapshot.RevertToSnapshot_Task()
    raise ValueError(f"unknown action {task.action!r}")


def recent_events(si: vim.ServiceInstance, moref: str, count: int = 20) -> list[dict[str, Any]]:
    """A VM's latest vSphere events (power, snapshots, reconfigurations), newest first."""
    spec = vim.event.EventFilterSpec(
        entity=vim.event.EventFilterSpec.ByEntity(
            entity=vim.VirtualMachine(moref, si._stub), recursion="self"
        ),
        maxCount=count,
    )
    events = si.RetrieveContent().eventManager
    assert events is not None  # every vCenter's ServiceContent has its EventManager
    found = [
        {"at": e.createdTime, "user": e.userName or "", "message": e.fullFormattedMessage or type(e).__name__}
        for e in events.QueryEvents(spec) or []
        # Some servers (vcsim) ignore the entity filter: keep the VM's own.
        if getattr(getattr(e, "vm", None), "vm", None) is not None and e.vm.vm._moId == moref
    ]
    found.sort(key=lambda e: e["at"], reverse=True)
    return found[:count]
