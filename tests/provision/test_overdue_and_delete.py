"""A VM that never phones home is marked failed with what vCenter knows, and can be
deleted from its request page after a confirmation; a seed ISO can be downloaded."""

from __future__ import annotations

import datetime
import io
import uuid

import pycdlib
import pytest
from django.urls import reverse
from django.utils import timezone

from hosts.models import ProvisionedVm
from hosts.provision import flow as provision
from hosts.provision import tasks as provision_tasks
from portal.models import AuditEntry, Event
from tests.conftest import PASSWORD
from tests.provision.conftest import BASE_URL, photon_template
from tests.provision.test_clone import make_request, start, vm_count

pytestmark = pytest.mark.django_db


@pytest.fixture
def cloned(synced_vc, project) -> ProvisionedVm:  # type: ignore[no-untyped-def]
    req = make_request(
        synced_vc, project, photon_template(synced_vc), name_pattern=f"silent-{uuid.uuid4().hex[:6]}-{{n}}"
    )
    (pvm,) = start(req)
    provision_tasks.run_request(req.pk, BASE_URL)
    pvm.refresh_from_db()
    assert pvm.state == ProvisionedVm.State.WAITING, pvm.detail
    return pvm


def test_a_vm_that_never_phones_home_fails_with_what_vcenter_knows(cloned) -> None:
    assert provision.fail_overdue() == []  # not yet due
    later = timezone.now() + datetime.timedelta(days=2)
    assert provision.fail_overdue(later) == [cloned.pk]
    cloned.refresh_from_db()
    assert cloned.state == ProvisionedVm.State.FAILED
    assert (
        "power poweredOn" in cloned.detail and "VMware Tools" in cloned.detail and "guest IP" in cloned.detail
    )
    assert Event.objects.filter(severity="error", message__contains=f"{cloned.name} did not enroll").exists()
    assert provision.fail_overdue(later) == []  # once


def test_a_failed_vm_is_deleted_after_confirmation(client, make_user, cloned, outside) -> None:
    project = cloned.request.project
    provision.fail_overdue(timezone.now() + datetime.timedelta(days=2))
    url = reverse("hosts:provision_vm_delete", args=[cloned.pk])
    viewer = make_user("viewer", project=project, role="viewer")
    assert client.login(username=viewer.username, password=PASSWORD)
    assert client.post(url).status_code == 403
    prov = make_user("prov", project=project, role="provisioner")
    assert client.login(username=prov.username, password=PASSWORD)
    page = client.get(url)
    assert page.status_code == 200 and b"cannot be undone" in page.content
    before = vm_count(outside)
    response = client.post(url)
    assert response.status_code == 302
    assert vm_count(outside) == before - 1
    cloned.refresh_from_db()
    assert cloned.moref == "" and "Deleted" in cloned.detail
    assert AuditEntry.objects.filter(action="provision.delete_vm", actor=prov).exists()


def test_a_waiting_vm_cannot_be_deleted(client, make_user, cloned) -> None:
    prov = make_user("prov", project=cloned.request.project, role="provisioner")
    assert client.login(username=prov.username, password=PASSWORD)
    response = client.post(reverse("hosts:provision_vm_delete", args=[cloned.pk]))
    assert response.status_code == 400 and b"Only a VM that failed" in response.content


def test_the_seed_iso_download_carries_a_fresh_token(client, make_user, cloned) -> None:
    prov = make_user("prov", project=cloned.request.project, role="provisioner")
    assert client.login(username=prov.username, password=PASSWORD)
    old_hash = cloned.token_hash
    url = reverse("hosts:provision_vm_seed", args=[cloned.pk])
    assert client.get(url).status_code == 405
    response = client.post(url)
    assert response.status_code == 200 and response["Content-Type"] == "application/x-iso9660-image"
    iso = pycdlib.PyCdlib()
    iso.open_fp(io.BytesIO(response.content))
    out = io.BytesIO()
    iso.get_file_from_iso_fp(out, rr_path="/user-data")
    iso.close()
    assert b"phone_home" in out.getvalue() and b"http://testserver/hosts/provision/enroll/" in out.getvalue()
    cloned.refresh_from_db()
    assert cloned.token_hash != old_hash
