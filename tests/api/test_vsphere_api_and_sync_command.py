"""vCenters and VMs through the API, and `manage.py sync_vcenter`, against the lab's vcsim."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from pyVim.task import WaitForTask

from hosts.models import Host, VirtualMachine, VmTask
from hosts.vsphere import links as vsphere_links
from portal.models import AuditEntry, Project, Role
from tests.api.common import client_for
from tests.lab.common import wait_until
from tests.vsphere.conftest import add_vcenter, find_vm

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.lab]


def test_sync_command_reads_the_inventory_and_says_so(lab_vcenter, capsys) -> None:  # type: ignore[no-untyped-def]
    vcenter = add_vcenter(lab_vcenter)
    call_command("sync_vcenter", "lab")
    line = capsys.readouterr().out.strip()
    count = VirtualMachine.objects.filter(vcenter=vcenter, gone=False).count()
    assert count > 0 and line == f"lab: {count} VMs, {count} new, 0 gone"
    with pytest.raises(CommandError, match="No vCenter 'nope'"):
        call_command("sync_vcenter", "nope")
    # A vCenter that does not answer: reported on its line, and a non-zero exit.
    add_vcenter(lab_vcenter, name="gone").__class__.objects.filter(name="gone").update(
        url="https://127.0.0.1:9"
    )
    with pytest.raises(CommandError, match="1 of 1 vCenter"):
        call_command("sync_vcenter", "gone")
    assert "gone: FAILED" in capsys.readouterr().out


def test_power_a_vm_through_the_api(lab_vcenter, outside, make_user, celery_worker_if_brokered) -> None:  # type: ignore[no-untyped-def]
    project = Project.objects.create(name="fleet")
    vcenter = add_vcenter(lab_vcenter)
    call_command("sync_vcenter", "lab")
    vm = VirtualMachine.objects.get(vcenter=vcenter, name="photon-ü-01")
    host = Host.objects.create(project=project, name="ü", docker_url=f"tcp://{vm.ip_address}:2376")
    # An Admin confirms the VM is that host (the sync links by provisioning's proof only).
    vsphere_links.link_vm(vm, host, actor=None)
    WaitForTask(find_vm(outside, vm.name).PowerOffVM_Task())
    call_command("sync_vcenter", "lab")  # the portal learns it, as its watcher would tell it
    viewer = client_for(make_user("viewer", project=project, role=Role.VIEWER))
    provisioner = client_for(make_user("prov", project=project, role=Role.PROVISIONER))
    admin = client_for(make_user("root", admin=True))

    assert [row["name"] for row in viewer.get("/api/vms/").json()["results"]] == ["photon-ü-01"]
    assert viewer.get("/api/vcenters/").status_code == 403
    assert admin.get("/api/vcenters/").json()["results"][0]["name"] == "lab"
    assert "password" not in admin.get(f"/api/vcenters/{vcenter.pk}/").json()
    assert viewer.post(f"/api/vms/{vm.pk}/power/", {"action": "power_on"}, format="json").status_code == 403

    response = provisioner.post(f"/api/vms/{vm.pk}/power/", {"action": "power_on"}, format="json")
    assert response.status_code == 202, response.content
    task_id = response.json()["id"]

    def done() -> bool:
        return provisioner.get(f"/api/vm-tasks/{task_id}/").json()["state"] in {"success", "error"}

    wait_until(done, timeout=60, what="the power-on task")
    assert VmTask.objects.get(pk=task_id).state == "success"
    assert provisioner.get(f"/api/vms/{vm.pk}/").json()["power_state"] == "poweredOn"
    assert AuditEntry.objects.filter(action="vm.power_on", actor__username="prov").exists()

    # Destructive actions need confirm: true; nothing is started without it.
    refused = provisioner.post(f"/api/vms/{vm.pk}/power/", {"action": "power_off"}, format="json")
    assert refused.status_code == 400 and "confirm" in refused.json()
    assert VmTask.objects.count() == 1
    assert admin.post(f"/api/vcenters/{vcenter.pk}/sync/").status_code == 202
