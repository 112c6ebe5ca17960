"""A VM waiting for enrollment: its page says how long it has waited and when the portal
gives up; its requester or a Project admin cancels it after a confirmation, which revokes
its enrollment token (the VM can no longer enroll) and offers deleting the VM."""

from __future__ import annotations

import datetime

import pytest
from django.urls import reverse
from django.utils import dateformat, timezone
from django.utils.html import strip_tags

from hosts.models import Host, ProvisionedVm, ProvisionRequest
from hosts.provision import services as provision_services
from hosts.provision import tasks as provision_tasks
from hosts.provision.checks import ProvisionError, check_quota
from portal.models import AuditEntry, Project
from portal.refused import Refused
from tests.provision.conftest import vm_row
from tests.provision.test_enrollment import phone_home, waiting  # noqa: F401 -- fixture reused

pytestmark = pytest.mark.django_db


@pytest.fixture
def requested(waiting, make_user):  # type: ignore[no-untyped-def]  # noqa: F811
    """``waiting``'s VM, requested by a Provisioner, cloned (it has a VM in vCenter)."""
    pvm, token = waiting
    requester = make_user("prov", project=pvm.request.project, role="provisioner")
    pvm.request.requester = requester
    pvm.request.save()
    # Its inventory row confirms the address it phones home from (hosts.provision.guest_address).
    vm = vm_row(pvm.request.vcenter, "new-1", template=False, ip_address="10.9.0.7")
    ProvisionedVm.objects.filter(pk=pvm.pk).update(moref=vm.moref)
    pvm.refresh_from_db()
    return pvm, token, requester


def text(response) -> str:  # type: ignore[no-untyped-def]
    # timesince separates number and unit with a no-break space.
    return response.content.decode().replace("\xa0", " ")


def test_the_request_page_shows_how_long_a_vm_has_waited_and_when_the_portal_gives_up(
    client, requested
) -> None:
    pvm, _, requester = requested
    now = timezone.now()
    ProvisionedVm.objects.filter(pk=pvm.pk).update(
        waiting_since=now - datetime.timedelta(minutes=12), token_expires=now + datetime.timedelta(minutes=48)
    )
    pvm.refresh_from_db()
    client.force_login(requester)
    page = text(client.get(reverse("hosts:provision_request", args=[pvm.request_id])))
    assert "Waiting 12 minutes" in page
    gives_up = dateformat.format(timezone.localtime(pvm.token_expires), "Y-m-d H:i")
    assert f"the portal gives up at {gives_up}" in strip_tags(page)  # the time is a <time>
    assert f'href="{reverse("hosts:provision_vm_cancel", args=[pvm.pk])}"' in page


def test_the_requester_cancels_after_a_confirmation_and_the_token_no_longer_enrolls(
    client, requested
) -> None:
    pvm, token, requester = requested
    client.force_login(requester)
    url = reverse("hosts:provision_vm_cancel", args=[pvm.pk])
    confirm = text(client.get(url))
    assert "Cancel provisioning new-1?" in confirm and "can no longer enroll" in confirm
    pvm.refresh_from_db()
    assert pvm.state == ProvisionedVm.State.WAITING  # a GET changes nothing
    response = client.post(url)
    # Then deleting the VM is offered: the existing delete flow.
    assert response.status_code == 302
    assert response["Location"] == reverse("hosts:provision_vm_delete", args=[pvm.pk])
    assert "Delete the VM" in text(client.get(response["Location"]))
    pvm.refresh_from_db()
    assert pvm.state == ProvisionedVm.State.CANCELLED and "Cancelled by prov" in pvm.detail
    assert not str(pvm.ssh_private_key) and not str(pvm.client_ca_key)
    assert AuditEntry.objects.filter(action="provision.cancel_vm", actor=requester).exists()
    client.logout()
    refused = phone_home(client, token)
    assert refused.status_code == 403 and b"cancelled" in refused.content
    assert not Host.objects.exists()
    client.force_login(requester)
    row = text(client.get(reverse("hosts:provision_request", args=[pvm.request_id])))
    assert "Cancelled" in row and reverse("hosts:provision_vm_delete", args=[pvm.pk]) in row
    listing = text(client.get(reverse("hosts:provision")))
    assert 'data-status="failed"' in listing and ">Cancelled<" in listing


def test_a_project_admin_cancels_anyones_request(client, requested, make_user) -> None:
    pvm, _, _ = requested
    client.force_login(make_user("boss", project=pvm.request.project, role="project_admin"))
    assert client.post(reverse("hosts:provision_vm_cancel", args=[pvm.pk])).status_code == 302
    pvm.refresh_from_db()
    assert pvm.state == ProvisionedVm.State.CANCELLED


@pytest.mark.parametrize(("who", "status"), [("other-prov", 403), ("viewer", 403), ("outsider", 404)])
def test_nobody_else_cancels(client, requested, make_user, who, status) -> None:
    pvm, token, _ = requested
    project = pvm.request.project
    if who == "outsider":
        user = make_user(who, project=Project.objects.create(name="elsewhere"), role="project_admin")
    else:
        user = make_user(who, project=project, role="provisioner" if who == "other-prov" else "viewer")
    client.force_login(user)
    assert client.post(reverse("hosts:provision_vm_cancel", args=[pvm.pk])).status_code == status
    pvm.refresh_from_db()
    assert pvm.state == ProvisionedVm.State.WAITING
    assert not AuditEntry.objects.filter(action="provision.cancel_vm").exists()
    client.logout()
    assert phone_home(client, token).status_code == 200  # its token still works


def test_an_enrolled_vm_cannot_be_cancelled(client, requested) -> None:
    pvm, token, requester = requested
    assert phone_home(client, token).status_code == 200
    client.force_login(requester)
    response = client.post(reverse("hosts:provision_vm_cancel", args=[pvm.pk]))
    assert response.status_code == 409 and "Only a VM still waiting" in text(response)
    pvm.refresh_from_db()
    assert pvm.state == ProvisionedVm.State.ENROLLED
    with pytest.raises(Refused):
        provision_services.cancel_vm(pvm, requester)


def test_a_cancelled_vm_gets_no_new_seed(client, requested) -> None:
    pvm, _, requester = requested
    provision_services.cancel_vm(pvm, requester)
    client.force_login(requester)
    # A seed carries a fresh token: none for a VM that was cancelled.
    assert client.post(reverse("hosts:provision_vm_seed", args=[pvm.pk])).status_code == 404
    pvm.refresh_from_db()
    assert pvm.state == ProvisionedVm.State.CANCELLED


def test_a_queued_vm_cancelled_is_never_cloned(requested) -> None:
    pvm, _, requester = requested
    ProvisionedVm.objects.filter(pk=pvm.pk).update(state=ProvisionedVm.State.QUEUED, moref="")
    pvm.refresh_from_db()
    provision_services.cancel_vm(pvm, requester)
    # The task finds nothing queued: it does not even open a session to vCenter.
    provision_tasks.run_request(pvm.request_id, "http://portal.test")
    pvm.refresh_from_db()
    assert pvm.state == ProvisionedVm.State.CANCELLED and pvm.moref == ""


def test_a_cancelled_vm_no_longer_counts_against_the_quota(requested) -> None:
    pvm, _, requester = requested
    project = pvm.request.project  # may hold 5 VMs
    more = ProvisionRequest(project=project, count=5, cpus=1, memory_mb=256, name_pattern="more-{n}")
    with pytest.raises(ProvisionError, match="6 VMs"):
        check_quota(more)
    provision_services.cancel_vm(pvm, requester)
    check_quota(more)
