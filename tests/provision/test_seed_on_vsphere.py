"""On vSphere the seed ISO is uploaded to a datastore and attached to the VM's CD-ROM."""

from __future__ import annotations

import io
import uuid

import pycdlib
import pytest
from pyVmomi import vim

from hosts.models import ProvisionedVm
from hosts.provision import cloud_config
from hosts.provision import seed as provision_seed
from hosts.provision import tasks as provision_tasks
from hosts.vsphere import client as vsphere
from hosts.vsphere.client import upload as vsphere_upload
from tests.provision.conftest import BASE_URL, photon_template
from tests.provision.test_clone import make_request, start
from tests.vsphere.conftest import find_vm

pytestmark = pytest.mark.django_db


def test_the_seed_iso_is_uploaded_and_attached(synced_vc, project, outside) -> None:
    req = make_request(
        synced_vc, project, photon_template(synced_vc), name_pattern=f"seeded-{uuid.uuid4().hex[:6]}"
    )
    (pvm,) = start(req)
    provision_tasks.run_request(req.pk, BASE_URL)
    pvm.refresh_from_db()
    assert pvm.state == ProvisionedVm.State.WAITING, pvm.detail
    iso = cloud_config.seed_iso(provision_seed.seed_for(pvm, BASE_URL))
    with vsphere.session(synced_vc) as si:
        file_name = provision_seed.attach_seed_iso(pvm, si, iso)
        vm = vim.VirtualMachine(pvm.moref, si._stub)
        datastore = vm.datastore[0]
        # The file reads back intact from the datastore, and still opens as a cidata ISO.
        stored = vsphere_upload.datastore_file(synced_vc, si, datastore, file_name.split("] ", 1)[1])
    assert stored == iso
    opened = pycdlib.PyCdlib()
    opened.open_fp(io.BytesIO(stored))
    assert opened.pvd.volume_identifier.decode().strip() == "cidata"
    opened.close()
    cdroms = [
        d
        for d in find_vm(outside, pvm.name).config.hardware.device
        if isinstance(d, vim.vm.device.VirtualCdrom)
    ]
    assert any(
        getattr(d.backing, "fileName", "") == file_name and d.connectable.startConnected for d in cdroms
    )


def test_a_provisioner_attaches_the_seed_from_the_request_page(
    client, make_user, synced_vc, project, outside
) -> None:
    from django.urls import reverse

    from tests.conftest import PASSWORD

    req = make_request(
        synced_vc, project, photon_template(synced_vc), name_pattern=f"seedui-{uuid.uuid4().hex[:6]}"
    )
    (pvm,) = start(req)
    provision_tasks.run_request(req.pk, BASE_URL)
    pvm.refresh_from_db()
    url = reverse("hosts:provision_vm_seed_attach", args=[pvm.pk])
    viewer = make_user("viewer", project=project, role="viewer")
    assert client.login(username=viewer.username, password=PASSWORD)
    assert client.post(url).status_code == 403
    prov = make_user("prov", project=project, role="provisioner")
    assert client.login(username=prov.username, password=PASSWORD)
    page = client.get(reverse("hosts:provision_request", args=[req.pk]))
    assert b"Attach seed ISO" in page.content
    response = client.post(url, follow=True)
    assert response.status_code == 200 and b"Seed ISO attached" in response.content
    cdroms = [
        d
        for d in find_vm(outside, pvm.name).config.hardware.device
        if isinstance(d, vim.vm.device.VirtualCdrom)
    ]
    assert any(getattr(d.backing, "fileName", "").endswith(f"{pvm.name}-seed.iso") for d in cdroms)
