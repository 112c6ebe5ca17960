"""A vSphere fault that ends a VM action is told in words; its raw name stays in the log.

The mapping is tested on what the portal reads: a task's ``info.error`` as the property
collector hands it over (plain data), and a fault pyVmomi raises when an action is started.
The lab test powers on a VM that is on already, behind the portal's back, and reads the
task's error as the person sees it."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from pyVim.task import WaitForTask
from pyVmomi import vim

from hosts.models import Host, VirtualMachine
from hosts.models.vsphere import PowerState
from hosts.vsphere import client as vsphere
from hosts.vsphere import faults
from hosts.vsphere import links as vsphere_links
from hosts.vsphere import services as vsphere_services
from hosts.vsphere import sync as vsphere_sync
from hosts.vsphere import tasks as vsphere_tasks
from portal.models import AuditEntry, Project
from tests.queued import record_queued
from tests.vsphere.conftest import find_vm


def _task_error(fault: str, message: str, **detail: str) -> dict[str, Any]:
    """A task's info.error as hosts.vsphere.client.collector.plain reads it."""
    return {
        "_type": "LocalizedMethodFault",
        "fault": {"_type": fault, **detail},
        "localizedMessage": message,
    }


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (
            _task_error("InvalidPowerState", "*types.InvalidPowerState", existingState="poweredOn"),
            "The VM is powered on now (it changed since the page was shown), so vCenter did nothing.",
        ),
        (
            _task_error("InvalidPowerState", "*types.InvalidPowerState"),
            "The VM is in another power state now (it changed since the page was shown), "
            "so vCenter did nothing.",
        ),
        (
            _task_error("InvalidState", "*types.InvalidState"),
            "The VM is not in a state that allows this now (it may be busy, or it changed "
            "since the page was shown): nothing was done.",
        ),
        (
            _task_error("TaskInProgress", "The operation is not allowed in the current state."),
            "Another task is running on this VM: try again when it has finished.",
        ),
        (
            _task_error("InvalidDatastorePath", "*types.InvalidDatastorePath"),
            "vCenter refused: invalid datastore path.",
        ),
        (
            _task_error("GenericVmConfigFault", "Disk locked by host esx-2"),
            "vCenter refused: Disk locked by host esx-2",
        ),
        (None, "vCenter reported that the task failed."),
    ],
)
def test_a_task_fault_is_told_in_words(error: Any, said: str) -> None:
    fault = faults.from_task_error(error)
    assert faults.in_words(fault) == said
    assert "*types." not in said


def test_a_fault_raised_when_starting_an_action_is_told_in_words() -> None:
    fault = faults.fault_of(vim.fault.InvalidPowerState(existingState="poweredOff"))
    assert fault is not None and fault.fault == "InvalidPowerState"
    assert faults.in_words(fault).startswith("The VM is powered off now")
    tools = faults.fault_of(vim.fault.ToolsUnavailable())
    assert tools is not None and "VMware Tools is not running" in faults.in_words(tools)


def test_what_is_no_fault_of_the_action_is_left_to_describe_failure() -> None:
    assert faults.fault_of(vim.fault.NotAuthenticated()) is None
    assert faults.fault_of(OSError("connection reset")) is None


@pytest.mark.django_db
def test_powering_on_a_vm_that_is_on_already_says_so_in_words(
    lab_vc, make_user, outside, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    project = Project.objects.create(name="fleet")
    with vsphere.session(lab_vc) as si:
        vsphere_sync.sync(lab_vc, si)
    vm = VirtualMachine.objects.get(vcenter=lab_vc, name="photon-ü-01")
    host = Host.objects.create(project=project, name="ü", docker_url="tcp://127.0.0.1:9")
    vsphere_links.link_vm(vm, host, actor=None)
    real = find_vm(outside, vm.name)
    if real.runtime.powerState != "poweredOn":
        WaitForTask(real.PowerOnVM_Task())
    # The portal's row is stale (its watcher has not told it yet): the service lets it through.
    VirtualMachine.objects.filter(pk=vm.pk).update(power_state=PowerState.OFF)
    vm = VirtualMachine.objects.with_placement().get(pk=vm.pk)
    queued = record_queued(monkeypatch, lambda _name, args: args[0])
    user = make_user("prov", project=project, role="provisioner")
    task = vsphere_services.request_vm_action(vm, user, "power_on", "", confirmed=False)
    assert queued == [task.pk]

    with caplog.at_level(logging.WARNING, logger="hosts.vsphere.tasks"):
        assert vsphere_tasks.run_vm_action(task.pk) == "error"
    task.refresh_from_db()
    assert (
        task.error
        == "The VM is powered on now (it changed since the page was shown), so vCenter did nothing."
    )
    assert "InvalidPowerState" in caplog.text  # the raw fault, for whoever reads the log
    failed = AuditEntry.objects.get(action="vm.power_on.failed")
    assert failed.after["error"] == task.error
    vm.refresh_from_db()
    assert vm.power_state == PowerState.ON  # read again: the page no longer offers it
