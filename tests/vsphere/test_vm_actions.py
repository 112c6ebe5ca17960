"""Power and snapshot actions: who may, confirmation first, a vSphere task, live progress, audit."""

from __future__ import annotations

import pytest
from django.urls import reverse
from pyVim.task import WaitForTask

from hosts.models import Host, VirtualMachine, VmTask
from hosts.vsphere import client as vsphere
from hosts.vsphere import links as vsphere_links
from hosts.vsphere import sync as vsphere_sync
from hosts.vsphere import tasks as vsphere_tasks
from portal.models import AuditEntry, Project
from tests.vsphere.conftest import find_vm

pytestmark = pytest.mark.django_db


@pytest.fixture
def fleet(lab_vc):
    """The lab synced, its Photon VM 'photon-ü-01' the host 'ü' of project 'fleet'."""
    project = Project.objects.create(name="fleet")
    with vsphere.session(lab_vc) as si:
        vsphere_sync.sync(lab_vc, si)
    vm = VirtualMachine.objects.get(vcenter=lab_vc, name="photon-ü-01")
    host = Host.objects.create(project=project, name="ü", docker_url=f"tcp://{vm.ip_address}:2376")
    # An Admin confirms the VM is that host (the sync links by provisioning's proof only).
    vsphere_links.link_vm(vm, host, actor=None)
    vm.refresh_from_db()
    assert vm.host is not None
    return project, vm


def test_power_on_runs_as_a_vsphere_task_and_is_audited(fleet, make_user, outside) -> None:
    project, vm = fleet
    WaitForTask(find_vm(outside, vm.name).PowerOffVM_Task())
    user = make_user("prov", project=project, role="provisioner")
    task = VmTask.objects.create(vm=vm, action="power_on", actor=user)
    assert vsphere_tasks.run_vm_action(task.pk) == "success"
    task.refresh_from_db()
    vm.refresh_from_db()
    assert task.progress == 100 and task.vsphere_task.startswith("task-") and task.finished
    assert vm.power_state == "poweredOn"  # re-read by the task, not waiting for the watcher
    entry = AuditEntry.objects.get(action="vm.power_on")
    assert entry.actor == user and entry.project == project and entry.object_repr == "photon-ü-01"
    assert vsphere_tasks.run_vm_action(task.pk) == "success"  # a redelivery runs nothing twice
    assert AuditEntry.objects.filter(action="vm.power_on").count() == 1


def test_snapshots_are_taken_and_reverted(fleet, make_user) -> None:
    project, vm = fleet
    user = make_user("prov", project=project, role="provisioner")
    take = VmTask.objects.create(vm=vm, action="snapshot_create", argument="before <upgrade>", actor=user)
    assert vsphere_tasks.run_vm_action(take.pk) == "success"
    vm.refresh_from_db()
    snapshot = next(s for s in vm.snapshots if s["name"] == "before <upgrade>")
    back = VmTask.objects.create(vm=vm, action="snapshot_revert", argument=snapshot["moref"], actor=user)
    assert vsphere_tasks.run_vm_action(back.pk) == "success"
    assert AuditEntry.objects.filter(action__in=["vm.snapshot_create", "vm.snapshot_revert"]).count() == 2


def test_a_failing_action_is_reported_not_raised(fleet, make_user) -> None:
    _, vm = fleet
    task = VmTask.objects.create(vm=vm, action="snapshot_revert", argument="snapshot-404")
    assert vsphere_tasks.run_vm_action(task.pk) == "error"
    task.refresh_from_db()
    assert task.error and task.finished
    assert AuditEntry.objects.filter(action="vm.snapshot_revert.failed").exists()


def test_who_may_act(fleet, client, make_user) -> None:
    project, vm = fleet
    url = reverse("hosts:vm_action", args=[vm.pk])
    client.force_login(make_user("viewer", project=project, role="viewer"))
    assert client.get(reverse("hosts:vm", args=[vm.pk])).status_code == 200
    assert client.post(url, {"action": "power_on"}).status_code == 403
    client.force_login(
        make_user("stranger", project=Project.objects.create(name="other"), role="project_admin")
    )
    assert client.get(reverse("hosts:vm", args=[vm.pk])).status_code == 404
    assert client.post(url, {"action": "power_on"}).status_code == 404
    assert client.get(reverse("hosts:vm_events", args=[vm.pk])).status_code == 404
    assert not VmTask.objects.exists()


def test_destructive_actions_ask_first_and_bad_input_changes_nothing(fleet, client, make_user) -> None:
    project, vm = fleet
    url = reverse("hosts:vm_action", args=[vm.pk])
    client.force_login(make_user("prov", project=project, role="provisioner"))
    asked = client.post(url, {"action": "power_off"})
    assert asked.status_code == 200 and b'name="confirmed" value="yes"' in asked.content
    assert client.get(url).status_code == 405
    for bad in ({"action": "destroy"}, {"action": "snapshot_revert", "argument": "snapshot-1"}):
        assert client.post(url, bad).status_code == 400
    assert client.post(url, {"action": "snapshot_create", "argument": "<b>"}).status_code == 400
    assert not VmTask.objects.exists()
    started = client.post(url, {"action": "power_off", "confirmed": "yes"})
    assert started.status_code == 302
    task = VmTask.objects.get()
    assert task.action == "power_off" and task.actor.username == "prov"


def test_inventory_shows_each_user_only_their_vms_escaped(fleet, client, make_user, lab_vcenter) -> None:
    project, _ = fleet
    client.force_login(make_user("root", admin=True))
    page = client.get(reverse("hosts:vsphere")).content.decode()
    assert "&lt;script&gt;alert(&quot;vm&quot;)&lt;/script&gt;" in page and "<script>alert(" not in page
    assert "O&#x27;Brien &amp; &quot;Sons&quot;" in page and "photon-ü-01" in page
    assert page.count('class="vm-row"') == lab_vcenter["vms"]
    photon = client.get(reverse("hosts:vsphere"), {"photon": "1"}).content.decode()
    assert photon.count('class="vm-row"') == lab_vcenter["photon_vms"]

    client.force_login(make_user("viewer", project=project, role="viewer"))
    mine = client.get(reverse("hosts:vsphere")).content.decode()
    assert mine.count('class="vm-row"') == 1 and "photon-ü-01" in mine
    assert f"project:{project.pk}:vms" in mine and "vsphere:all" not in mine

    client.force_login(make_user("nobody"))
    assert client.get(reverse("hosts:vsphere")).content.decode().count('class="vm-row"') == 0


def test_the_vm_page_shows_recent_vsphere_events(fleet, client, make_user) -> None:
    project, vm = fleet
    client.force_login(make_user("viewer", project=project, role="viewer"))
    events = client.get(reverse("hosts:vm_events", args=[vm.pk])).content.decode()
    assert 'class="vm-event"' in events
