"""A vSphere fault that ends a VM action, in words for the person who asked.

vCenter (and vcsim) answer an action the VM's state does not allow with a fault whose
message, when it has one, is for developers ("*types.InvalidPowerState"). The portal
refuses the pointless actions it can see coming (``services.pointless``); a fault still
comes when the VM changed in between. Its name goes to the log only; the task's error
says what it means.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from hosts.vsphere import client as vsphere

POWER_WORDS = {"poweredOn": "powered on", "poweredOff": "powered off", "suspended": "suspended"}

#: Fault name -> what it means for the VM's action (InvalidPowerState is told with the state).
FAULT_WORDS = {
    "InvalidState": "The VM is not in a state that allows this now (it may be busy, or it changed "
    "since the page was shown): nothing was done.",
    "TaskInProgress": "Another task is running on this VM: try again when it has finished.",
    "ToolsUnavailable": "VMware Tools is not running in the guest, so it cannot be shut down "
    "from vCenter: power the VM off instead.",
    "NotSupported": "vCenter does not support this action on this VM.",
    "NoPermission": "The portal's vCenter account is not allowed to do this on this VM.",
    "ManagedObjectNotFound": "The VM (or the snapshot) is no longer in vCenter.",
    "FileLocked": "A file of the VM is locked by another operation: try again in a moment.",
}


class TaskFault(Exception):
    """A vSphere task ended with a fault: its name (for the log), what vCenter said of it
    and its properties (``existingState``...)."""

    def __init__(self, fault: str, message: str = "", detail: Mapping[str, Any] | None = None) -> None:
        super().__init__(f"{fault}: {message}" if message else fault)
        self.fault = fault
        self.message = message
        self.detail = dict(detail or {})


def from_task_error(error: Any) -> TaskFault:
    """The fault of a task's ``info.error`` (a LocalizedMethodFault, read as plain data)."""
    if not isinstance(error, Mapping):
        return TaskFault("", "")
    fault = error.get("fault")
    fault = fault if isinstance(fault, Mapping) else {}
    name = str(fault.get("_type") or "")
    return TaskFault(name, str(error.get("localizedMessage") or ""), fault)


def fault_of(exc: BaseException) -> TaskFault | None:
    """``exc`` as a fault of the VM's action, or None when it is something else (a lost
    connection, an ended session: ``vsphere.describe_failure`` tells those)."""
    if isinstance(exc, TaskFault):
        return exc
    if isinstance(exc, vsphere.MethodFault):
        # pyVmomi names its fault classes "vim.fault.InvalidPowerState".
        name = type(exc).__name__.rsplit(".", 1)[-1]
        if name in FAULT_WORDS or name == "InvalidPowerState":
            detail = {"existingState": getattr(exc, "existingState", None)}
            return TaskFault(name, vsphere.fault_message(exc), detail)
    return None


def in_words(fault: TaskFault) -> str:
    """What ``fault`` means for the person who asked."""
    if fault.fault == "InvalidPowerState":
        state = POWER_WORDS.get(str(fault.detail.get("existingState") or ""), "in another power state")
        return f"The VM is {state} now (it changed since the page was shown), so vCenter did nothing."
    if fault.fault in FAULT_WORDS:
        return FAULT_WORDS[fault.fault]
    if fault.message and not fault.message.startswith("*types.") and fault.message != fault.fault:
        return f"vCenter refused: {fault.message}"
    if fault.fault:
        # "InvalidDatastorePath" -> "invalid datastore path": the name, read as words.
        return f"vCenter refused: {re.sub(r'(?<!^)(?=[A-Z])', ' ', fault.fault).lower()}."
    return "vCenter reported that the task failed."
