"""Issue 12, point 2: a VM joins a project only by proof (provisioning's record of the
clone, or an Admin's confirmation), never by a name or an address; every link and
unlink is audited. Against the lab's vcsim, through the real sync and views."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from hosts.models import Host, ProvisionedVm, ProvisionRequest, VCenter, VirtualMachine
from hosts.vsphere import client as vsphere
from hosts.vsphere import sync as vsphere_sync
from portal.models import AuditEntry, Project, Role
from tests.vsphere.conftest import add_vcenter

pytestmark = pytest.mark.django_db

VM_NAME = "photon-ü-01"


def _sync(vcenter: VCenter) -> vsphere_sync.SyncResult:
    with vsphere.session(vcenter) as si:
        return vsphere_sync.sync(vcenter, si)


@pytest.fixture
def synced(lab_vcenter: dict[str, Any]) -> tuple[VCenter, VirtualMachine]:
    vcenter = add_vcenter(lab_vcenter)
    _sync(vcenter)
    return vcenter, VirtualMachine.objects.get(vcenter=vcenter, name=VM_NAME)


def test_a_host_with_the_vms_name_and_address_in_another_project_never_gets_the_vm(
    synced, client, make_user
) -> None:
    """Project B's admin names a host like the VM and points it at the VM's address: the
    sync used to link the VM to it, and B could then power, reset and revert it."""
    vcenter, vm = synced
    b = Project.objects.create(name="b")
    Host.objects.create(
        project=b, name=VM_NAME, address=vm.ip_address, docker_url=f"tcp://{vm.ip_address}:2376"
    )
    result = _sync(vcenter)
    vm.refresh_from_db()
    assert vm.host is None and result.linked == []
    attacker = make_user("mallory", project=b, role=Role.PROJECT_ADMIN)
    client.force_login(attacker)
    assert client.get(reverse("hosts:vm", args=[vm.pk])).status_code == 404
    response = client.post(reverse("hosts:vm_action", args=[vm.pk]), {"action": "power_off"})
    assert response.status_code == 404
    assert not AuditEntry.objects.filter(action="vsphere.vm_linked").exists()


def test_auto_registration_never_adopts_another_projects_host(lab_vcenter, synced) -> None:
    """With an auto-register project set, a VM whose address B's host claims is not linked to
    B's host nor copied into a second host: it waits for an Admin. Others register, audited."""
    _, vm = synced
    a = Project.objects.create(name="a")
    b = Project.objects.create(name="b")
    b_host = Host.objects.create(project=b, name=VM_NAME, docker_url=f"tcp://{vm.ip_address}:2376")
    vcenter = add_vcenter(lab_vcenter, name="auto", auto_register_project=a)
    result = _sync(vcenter)
    copy = VirtualMachine.objects.get(vcenter=vcenter, moref=vm.moref)
    assert copy.host is None
    assert not b_host.vms.exists()
    assert not Host.objects.filter(project=a, address=vm.ip_address).exists()
    assert result.registered and not Host.objects.filter(pk__in=result.registered).exclude(project=a).exists()
    links = AuditEntry.objects.filter(action="vsphere.vm_linked")
    assert links.count() == len(result.linked) == len(result.registered)
    assert {e.after["by"] for e in links} == {"registered as a new host"}
    assert set(links.values_list("project", flat=True)) == {a.pk}


def test_provisionings_record_of_the_clone_links_it_and_is_audited(synced) -> None:
    vcenter, vm = synced
    a = Project.objects.create(name="a")
    host = Host.objects.create(project=a, name="web-1", docker_url="tcp://198.51.100.7:2376")
    request = ProvisionRequest.objects.create(project=a, vcenter=vcenter, name_pattern="web-{n}")
    ProvisionedVm.objects.create(
        request=request,
        name="web-1",
        instance_id="portal-x",
        moref=vm.moref,
        token_hash="x" * 64,
        token_expires=timezone.now(),
        state=ProvisionedVm.State.ENROLLED,
        host=host,
    )
    result = _sync(vcenter)
    vm.refresh_from_db()
    assert vm.host == host and result.linked == [vm.pk]
    entry = AuditEntry.objects.get(action="vsphere.vm_linked")
    assert (
        entry.project == a and entry.after["by"] == "provisioned clone" and entry.actor_name == "vCenter sync"
    )


def test_only_an_admin_links_and_unlinks_and_both_are_audited(synced, client, make_user) -> None:
    _, vm = synced
    b = Project.objects.create(name="b")
    host = Host.objects.create(project=b, name="mine", docker_url="tcp://198.51.100.8:2376")
    link, unlink = reverse("hosts:vm_link", args=[vm.pk]), reverse("hosts:vm_unlink", args=[vm.pk])
    client.force_login(make_user("mallory", project=b, role=Role.PROJECT_ADMIN))
    assert client.post(link, {"host": host.pk}).status_code == 403
    vm.refresh_from_db()
    assert vm.host is None

    admin = make_user("root", admin=True)
    client.force_login(admin)
    page = client.get(reverse("hosts:vm", args=[vm.pk])).content.decode()
    assert "Link to this host" in page
    assert client.post(link, {"host": "999999"}).status_code == 302
    vm.refresh_from_db()
    assert vm.host is None
    assert client.post(link, {"host": host.pk}).status_code == 302
    vm.refresh_from_db()
    assert vm.host == host
    linked = AuditEntry.objects.get(action="vsphere.vm_linked")
    assert (
        linked.actor_name == "root"
        and linked.project == b
        and linked.after["by"] == "an Admin's confirmation"
    )

    client.force_login(make_user("bob", project=b, role=Role.PROJECT_ADMIN))
    assert client.post(unlink).status_code == 403
    vm.refresh_from_db()
    assert vm.host == host

    client.force_login(admin)
    assert client.post(unlink).status_code == 302
    vm.refresh_from_db()
    assert vm.host is None
    unlinked = AuditEntry.objects.get(action="vsphere.vm_unlinked")
    assert unlinked.before["host"] == host.pk and unlinked.project == b
