"""Cloning from a template on the lab's vcsim: the guestinfo keys set exactly, and
every refusal made before any clone."""

from __future__ import annotations

import base64
import contextlib
import json
import subprocess
import uuid

import pytest
import yaml
from pyVim.task import WaitForTask
from pyVmomi import vim, vmodl

from hosts import ssh_keys
from hosts.changes.files import docker as docker_settings
from hosts.models import Host, ProvisionedVm, ProvisionRequest
from hosts.provision import checks as provision_checks
from hosts.provision import cloud_config
from hosts.provision import services as provision_services
from hosts.provision import tasks as provision_tasks
from hosts.vsphere import client as vsphere
from portal.models import AuditEntry
from tests.provision.conftest import BASE_URL, other_template, photon_template
from tests.vsphere.conftest import find_vm

pytestmark = pytest.mark.django_db


def make_request(vcenter, project, template, **fields) -> ProvisionRequest:  # type: ignore[no-untyped-def]
    values = {"cpus": 1, "memory_mb": 512, "count": 1, "name_pattern": "new-{n}", **fields}
    return ProvisionRequest.objects.create(
        project=project, vcenter=vcenter, template=template.moref, template_name=template.name, **values
    )


def start(req: ProvisionRequest) -> list[ProvisionedVm]:
    with vsphere.session(req.vcenter) as si:
        return provision_services.start(req, enroll_base_url=BASE_URL, si=si)


def test_clone_sets_exactly_the_guestinfo_keys(synced_vc, project, outside) -> None:
    template = photon_template(synced_vc)
    req = make_request(synced_vc, project, template, count=2, name_pattern="clone-{n}")
    pvms = start(req)
    assert [p.name for p in pvms] == ["clone-1", "clone-2"]
    provision_tasks.run_request(req.pk, BASE_URL)

    for pvm in pvms:
        pvm.refresh_from_db()
        assert pvm.state == ProvisionedVm.State.WAITING, pvm.detail
        vm = find_vm(outside, pvm.name)
        assert vm._moId == pvm.moref
        assert vm.runtime.powerState == "poweredOn"
        assert vm.config.hardware.numCPU == 1 and vm.config.hardware.memoryMB == 512
        guestinfo = {o.key: o.value for o in vm.config.extraConfig if o.key.startswith("guestinfo.")}
        assert set(guestinfo) == set(cloud_config.GUESTINFO_KEYS)
        assert (
            guestinfo["guestinfo.metadata.encoding"] == guestinfo["guestinfo.userdata.encoding"] == "base64"
        )
        meta = json.loads(base64.b64decode(guestinfo["guestinfo.metadata"]))
        assert meta == {"instance-id": pvm.instance_id, "local-hostname": pvm.name}
        user_data = yaml.safe_load(base64.b64decode(guestinfo["guestinfo.userdata"]))
        assert user_data["hostname"] == pvm.name
        assert user_data["phone_home"]["url"].startswith(BASE_URL + "/hosts/provision/enroll/")
        # Root trusts the key made for this VM alone; dockerd, the client CA made for it alone.
        assert user_data["users"][0]["ssh_authorized_keys"] == [
            ssh_keys.public_ssh_key(str(pvm.ssh_private_key)) + f" photon-portal@{pvm.name}"
        ]
        files = {f["path"]: f["content"] for f in user_data["write_files"]}
        assert files[docker_settings.CA] == pvm.client_ca_cert
    # Each VM has its own token: the URLs differ.
    urls = set()
    for pvm in pvms:
        info = {o.key: o.value for o in find_vm(outside, pvm.name).config.extraConfig}
        urls.add(yaml.safe_load(base64.b64decode(info["guestinfo.userdata"]))["phone_home"]["url"])
    assert len(urls) == 2
    assert AuditEntry.objects.filter(action="provision.request", project=project).count() == 1


def vm_count(si: vim.ServiceInstance) -> int:
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    try:
        return len(view.view)
    finally:
        view.Destroy()


def refused(req: ProvisionRequest, outside, match: str) -> None:  # type: ignore[no-untyped-def]
    before = vm_count(outside)
    with pytest.raises(provision_checks.ProvisionError, match=match):
        start(req)
    assert not ProvisionedVm.objects.filter(request=req).exists()
    assert vm_count(outside) == before


def test_a_template_that_is_not_photon_is_refused(synced_vc, project, outside) -> None:
    req = make_request(synced_vc, project, other_template(synced_vc))
    refused(req, outside, "not a Photon OS template")


def test_a_name_pattern_that_collides_is_refused(synced_vc, project, outside) -> None:
    template = photon_template(synced_vc)
    # Renamed outside the portal since the last sync: vCenter itself is asked, not only the mirror.
    WaitForTask(find_vm(outside, other_template(synced_vc).name).Rename_Task("taken-by-someone"))
    req = make_request(synced_vc, project, template, name_pattern="taken-by-someone")
    refused(req, outside, "already taken")
    Host.objects.create(project=project, name="busy-1", docker_url="tcp://192.0.2.1:2376")
    req = make_request(synced_vc, project, template, count=2, name_pattern="busy-{n}")
    refused(req, outside, "busy-1")


def test_over_quota_is_refused(synced_vc, project, outside) -> None:
    template = photon_template(synced_vc)
    req = make_request(synced_vc, project, template, count=3, cpus=4)
    refused(req, outside, r"12 CPUs \(quota 10\)")
    project.provision_quota.delete()
    refused(make_request(synced_vc, project, template), outside, "no provisioning quota")


@pytest.fixture
def tiny_datastore(outside, tmp_path):  # type: ignore[no-untyped-def]
    """A 64 KiB datastore: vcsim backs a local datastore by a directory, here a small tmpfs."""
    directory = tmp_path / "tiny"
    directory.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(directory)], check=True)
    content = outside.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.HostSystem], True)
    system = view.view[0].configManager.datastoreSystem
    view.Destroy()
    datastore = system.CreateLocalDatastore(f"tiny-{uuid.uuid4().hex[:6]}", str(directory))
    yield datastore
    # vcsim implements neither RemoveDatastore nor Destroy for datastores: try, and in any
    # case give the memory back (the simulator only lasts this test session).
    with contextlib.suppress(vmodl.MethodFault):
        WaitForTask(datastore.Destroy_Task())
    subprocess.run(["umount", "-l", str(directory)], check=False)


def test_a_datastore_without_room_is_refused(synced_vc, project, outside, tiny_datastore) -> None:
    template = photon_template(synced_vc)
    req = make_request(synced_vc, project, template, datastore=tiny_datastore._moId)
    refused(req, outside, r"has 0 MB free; 1 clone\(s\) need")
