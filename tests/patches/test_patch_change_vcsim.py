"""A patch change on a host that is a vSphere VM (vcsim's, linked to a lab RPM host): the VM is
snapshotted before the update (read back from vcsim's snapshot tree), the snapshot is kept for
the success window and then removed by the watcher's pass (gone from vcsim); a host that does
not come back from its reboot has its VM reverted to that snapshot and powered on again."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pyVmomi import vim, vmodl

from hosts.models import Host, PatchChangeStatus, PatchRun, PatchRunState, SnapshotState, VirtualMachine
from hosts.patches import changes, schedule, snapshots, status
from hosts.patches.plan import Selection
from hosts.vsphere import client as vsphere
from hosts.vsphere import links as vsphere_links
from hosts.vsphere import sync as vsphere_sync
from portal.models import AuditEntry, Project, Role
from tests.lab.common import wait_until
from tests.patches.lab_packages import LabHost, host_for, rpm
from tests.vsphere.conftest import add_vcenter, find_vm

pytestmark = pytest.mark.lab


def snapshot_names(lab_vcenter: dict[str, Any], vm_name: str) -> list[str]:
    """Every snapshot of the VM as vcsim has it now (its tree, flattened), read in a session of
    its own (someone looking from outside the portal; vcsim drops idle connections)."""
    pem = Path(lab_vcenter["certificate"]).read_text()
    si = vsphere.connect_pinned(lab_vcenter["url"], lab_vcenter["user"], lab_vcenter["password"], pem)
    try:
        # Through the property collector, not ``vm.snapshot``: once a VM's last snapshot is
        # removed, vcsim (before govmomi#3381) fails that accessor.
        collector = vmodl.query.PropertyCollector
        spec = collector.FilterSpec(
            objectSet=[collector.ObjectSpec(obj=find_vm(si, vm_name))],
            propSet=[collector.PropertySpec(type=vim.VirtualMachine, pathSet=["snapshot"])],
        )
        answer = si.content.propertyCollector.RetrievePropertiesEx([spec], collector.RetrieveOptions())
        props = [p.val for o in (answer.objects if answer else []) for p in o.propSet if p.val is not None]
        found: list[str] = []
        stack: list[vim.vm.SnapshotTree] = [t for info in props for t in info.rootSnapshotList]
        while stack:
            node = stack.pop()
            found.append(node.name)
            stack.extend(node.childSnapshotList or [])
        return found
    finally:
        vsphere.disconnect(si)


def vm_host(
    lab: LabHost, lab_vcenter: dict[str, Any], project: Project, order: str
) -> tuple[VirtualMachine, Host]:
    """The lab host registered in ``project``, linked to a Photon VM of vcsim that is no host yet
    (the first by ``order``: the two tests take one from each end), its patch status read."""
    vcenter = add_vcenter(lab_vcenter)
    with vsphere.session(vcenter) as si:
        vsphere_sync.sync(vcenter, si)
    vm = (
        VirtualMachine.objects.filter(vcenter=vcenter, is_photon=True, is_template=False, host=None)
        .order_by(order)
        .first()
    )
    assert vm is not None
    host = host_for(lab, project)
    vsphere_links.link_vm(vm, host, actor=None)
    assert [r.error for r in status.refresh_hosts([host])] == [""]
    return vm, host


def test_a_vms_host_is_snapshotted_first_and_the_snapshot_removed_after_the_window(
    lab_rpm: dict[str, Any],
    lab_hosts: list[LabHost],
    lab_vcenter: dict[str, Any],
    transactional_db: None,
    celery_worker_if_brokered: None,
    make_user: Any,
    restored: Any,
) -> None:
    lab = lab_hosts[1]
    before = restored(lab)
    project = Project.objects.create(name="lab vSphere patching")
    vm, host = vm_host(lab, lab_vcenter, project, "name")
    admin = make_user("padmin", project=project, role=Role.PROJECT_ADMIN)
    change = changes.plan_change(
        admin,
        project.pk,
        host_ids=[host.pk],
        selection=Selection("advisories", (lab_rpm["bugfix_advisory"],)),
    )
    changes.submit(change, admin)
    changes.approve(change, admin)
    changes.start_apply(change, admin)

    wait_until(
        lambda: PatchRun.objects.filter(change=change).exclude(state__in=["queued", "applying"]).first(),
        timeout=300,
        what="the VM's host patched",
    )
    run = PatchRun.objects.get(change=change)
    assert run.state == PatchRunState.APPLIED, (run.reason, run.result)
    assert (run.snapshot_name, run.snapshot_state) == (snapshots.name_for(change.pk), SnapshotState.TAKEN)
    assert run.snapshot_moref.startswith("snapshot-")
    assert run.finished is not None and run.snapshot_remove_after is not None
    assert run.snapshot_remove_after - run.finished == pytest.approx(
        timedelta(hours=24), abs=timedelta(minutes=1)
    )
    assert rpm(lab) != before
    assert snapshots.name_for(change.pk) in snapshot_names(lab_vcenter, vm.name)
    taken = AuditEntry.objects.get(action="patch.snapshot_taken")
    assert taken.after is not None and taken.after["moref"] == run.snapshot_moref
    assert taken.actor == admin

    # Within the window the snapshot stays; past it the watcher's pass removes it.
    assert schedule.remove_expired_snapshots(run.snapshot_remove_after - timedelta(minutes=1)) == 0
    assert snapshots.name_for(change.pk) in snapshot_names(lab_vcenter, vm.name)
    assert schedule.remove_expired_snapshots(run.snapshot_remove_after + timedelta(minutes=1)) == 1
    assert snapshots.name_for(change.pk) not in snapshot_names(lab_vcenter, vm.name)
    run.refresh_from_db()
    assert run.snapshot_state == SnapshotState.REMOVED and run.snapshot_remove_after is None
    assert AuditEntry.objects.filter(action="patch.snapshot_removed").count() == 1
    assert schedule.remove_expired_snapshots(run.finished + timedelta(days=30)) == 0  # once
    change.refresh_from_db()
    assert change.status == PatchChangeStatus.APPLIED


def test_a_vms_host_that_does_not_come_back_is_reverted_to_its_snapshot(
    lab_rpm: dict[str, Any],
    lab_hosts: list[LabHost],
    lab_vcenter: dict[str, Any],
    transactional_db: None,
    celery_worker_if_brokered: None,
    make_user: Any,
    restored: Any,
) -> None:
    """The kernel-like update reboots the host, which stays down past PORTAL_PATCH_REBOOT_TIMEOUT
    (tests.conftest: 20 s): nothing can downgrade it, so the VM is reverted to the snapshot taken
    before the update and powered on again; the snapshot is kept for a person. (vcsim's VM and
    the lab host are two machines here: the revert is read back from vcsim, and the lab host's
    packages are put back by the ``restored`` fixture.)"""
    lab = lab_hosts[1]
    restored(lab)
    project = Project.objects.create(name="lab vSphere reverts")
    vm, host = vm_host(lab, lab_vcenter, project, "-name")
    admin = make_user("padmin", project=project, role=Role.PROJECT_ADMIN)
    change = changes.plan_change(admin, project.pk, host_ids=[host.pk], selection=Selection("security"))
    assert change.runs.get().plan["reboot_reasons"], "the kernel-like update reboots"
    changes.submit(change, admin)
    changes.approve(change, admin)
    held = Path(str(lab["dir"])) / "stay-down"
    held.touch()
    try:
        changes.start_apply(change, admin)
        wait_until(
            lambda: PatchRun.objects.filter(change=change).exclude(state__in=["queued", "applying"]).first(),
            timeout=300,
            what="the VM's host given up on",
        )
    finally:
        held.unlink()
    run = PatchRun.objects.get(change=change)
    assert run.state == PatchRunState.FAILED, (run.reason, run.result)
    assert "did not come back" in run.reason
    assert f"the VM was reverted to its snapshot {snapshots.name_for(change.pk)}" in run.reason
    assert run.snapshot_state == SnapshotState.REVERTED and run.snapshot_remove_after is None
    reverted = AuditEntry.objects.get(action="patch.snapshot_reverted")
    assert reverted.after is not None and reverted.after["moref"] == run.snapshot_moref
    # Kept for a person to decide, and the VM running again (a snapshot without memory is off).
    assert snapshots.name_for(change.pk) in snapshot_names(lab_vcenter, vm.name)
    pem = Path(lab_vcenter["certificate"]).read_text()
    si = vsphere.connect_pinned(lab_vcenter["url"], lab_vcenter["user"], lab_vcenter["password"], pem)
    try:
        assert find_vm(si, vm.name).runtime.powerState == "poweredOn"
    finally:
        vsphere.disconnect(si)
    assert schedule.remove_expired_snapshots(run.finished + timedelta(days=30)) == 0
    change.refresh_from_db()
    assert change.status == PatchChangeStatus.FAILED
    wait_until(lambda: rpm(lab), timeout=60, what="the lab host back after its release")
