"""Provisioning through the API (issue 20): the same service as the request form's page, so
the same refusals in the same words, the same audit entry, and the same who-may-see-what."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from hosts.models import ProvisionedVm, ProvisionQuota, ProvisionRequest, VCenter
from hosts.vsphere import client as vsphere
from hosts.vsphere import sync as vsphere_sync
from portal.models import AuditEntry, Project, Role
from tests.api.common import client_for
from tests.provision.conftest import photon_template
from tests.queued import broker_down, record_queued
from tests.vsphere.conftest import add_vcenter

pytestmark = pytest.mark.django_db

URL = "/api/provision-requests/"


@pytest.fixture
def fleet(db: None) -> Project:
    project = Project.objects.create(name="fleet")
    ProvisionQuota.objects.create(project=project, max_vms=5, max_cpus=10, max_memory_mb=10240)
    return project


@pytest.fixture
def lab_vc(fleet: Project, lab_vcenter: dict[str, Any]) -> VCenter:
    """The lab's vCenter, synced, on ``fleet``'s quota. Nothing is cloned here: the clones'
    task is recorded, never run (``queued``)."""
    vcenter = add_vcenter(lab_vcenter)
    with vsphere.session(vcenter) as si:
        vsphere_sync.sync(vcenter, si)
    fleet.provision_quota.vcenters.add(vcenter)
    return vcenter


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    return record_queued(monkeypatch)


def ask(vcenter: VCenter, project: Project, **fields: Any) -> dict[str, Any]:
    body = {
        "project": project.pk,
        "vcenter": vcenter.pk,
        "template": photon_template(vcenter).pk,
        "cpus": 1,
        "memory_mb": 512,
        "count": 1,
        "name_pattern": "apimade-{n}",
    }
    return body | fields


def page_refusal(client: Any, user: Any, body: dict[str, Any]) -> Any:
    """What the request form's page answers ``body`` with (400: its context)."""
    client.force_login(user)
    response = client.post(reverse("hosts:provision_new"), {k: v for k, v in body.items() if v is not None})
    assert response.status_code == 400, response.content.decode()[:2000]
    return response.context


def test_a_provisioner_requests_in_their_project_and_sees_it(make_user, lab_vc, fleet, queued) -> None:
    prov = make_user("prov", project=fleet, role=Role.PROVISIONER)
    api = client_for(prov)
    response = api.post(URL, ask(lab_vc, fleet), format="json")
    assert response.status_code == 201, response.content
    made = response.json()
    req = ProvisionRequest.objects.get()
    assert made["id"] == req.pk and made["requester"] == "prov" and made["project"] == fleet.pk
    assert [vm["name"] for vm in made["vms"]] == ["apimade-1"] and made["status"] == "running"
    assert made["template_name"] == photon_template(lab_vc).name
    assert len(queued) == 1  # the clones' task, as the page queues it
    listed = api.get(URL).json()["results"]
    assert [row["id"] for row in listed] == [req.pk]
    assert api.get(f"{URL}{req.pk}/").json()["vms"][0]["state"] == "queued"
    # Secrets of the VM (its token's hash, its keys) are never part of an answer.
    assert "token" not in api.get(f"{URL}{req.pk}/").content.decode()


def test_the_audit_trail_has_the_same_entry_as_the_pages(client, make_user, lab_vc, fleet, queued) -> None:
    prov = make_user("prov", project=fleet, role=Role.PROVISIONER)
    client.force_login(prov)
    page = client.post(reverse("hosts:provision_new"), ask(lab_vc, fleet, name_pattern="pagemade-{n}"))
    assert page.status_code == 302, page.content.decode()[:2000]
    assert client_for(prov).post(URL, ask(lab_vc, fleet), format="json").status_code == 201
    entries = list(AuditEntry.objects.filter(action="provision.request").order_by("pk"))
    assert len(entries) == 2
    by_page, by_api = entries
    for entry, name in ((by_page, "pagemade-1"), (by_api, "apimade-1")):
        assert entry.actor == prov and entry.project_id == fleet.pk
        assert entry.after == {"names": [name]}
    assert by_page.object_type == by_api.object_type


def test_a_viewer_sees_requests_but_is_refused_a_new_one(make_user, lab_vc, fleet, queued) -> None:
    req = ProvisionRequest.objects.create(
        project=fleet, vcenter=lab_vc, template="vm-1", name_pattern="x-{n}"
    )
    api = client_for(make_user("viewer", project=fleet, role=Role.VIEWER))
    assert [row["id"] for row in api.get(URL).json()["results"]] == [req.pk]
    assert api.get(f"{URL}{req.pk}/").status_code == 200
    refused = api.post(URL, ask(lab_vc, fleet), format="json")
    assert refused.status_code == 403 and "Provisioner or Project admin of fleet" in refused.json()["detail"]
    assert ProvisionRequest.objects.count() == 1 and not queued


def test_a_member_of_another_project_gets_404_for_a_forged_id(make_user, lab_vc, fleet, queued) -> None:
    req = ProvisionRequest.objects.create(
        project=fleet, vcenter=lab_vc, template="vm-1", name_pattern="x-{n}"
    )
    pvm = ProvisionedVm.objects.create(
        request=req, name="x-1", instance_id="i-1", token_hash="h-1", token_expires=req.created
    )
    other = Project.objects.create(name="other")
    api = client_for(make_user("outsider", project=other, role=Role.PROJECT_ADMIN))
    assert api.get(URL).json()["results"] == []
    assert api.get(f"{URL}{req.pk}/").status_code == 404
    assert api.post(f"{URL}{req.pk}/vms/{pvm.pk}/cancel/").status_code == 404
    assert api.get(f"{URL}{req.pk}/", {"project": fleet.pk}).status_code == 404
    # Requesting in a project they are not in: refused, without naming it.
    refused = api.post(URL, ask(lab_vc, fleet), format="json")
    assert refused.status_code == 403 and "fleet" not in refused.json()["detail"]
    ProvisionedVm.objects.get(pk=pvm.pk, state=ProvisionedVm.State.QUEUED)


def test_over_quota_is_refused_with_the_pages_message(client, make_user, lab_vc, fleet, queued) -> None:
    prov = make_user("prov", project=fleet, role=Role.PROVISIONER)
    body = ask(lab_vc, fleet, cpus=4, count=3)  # 12 CPUs: the quota is 10
    shown = page_refusal(client, prov, body)["error"]
    assert shown.startswith("Over project fleet's quota")
    refused = client_for(prov).post(URL, body, format="json")
    assert refused.status_code == 400 and refused.json() == {"detail": shown}
    assert not ProvisionRequest.objects.exists() and not queued


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"count": 2, "name_pattern": "same"}, "name_pattern"),
        ({"name_pattern": "Not_A_Name-{n}"}, "name_pattern"),
        ({"profile": 2**40}, "profile"),
    ],
)
def test_a_bad_name_is_refused_with_the_pages_message(
    client, make_user, lab_vc, fleet, queued, fields, field
) -> None:
    prov = make_user("prov", project=fleet, role=Role.PROVISIONER)
    body = ask(lab_vc, fleet, **fields)
    shown = page_refusal(client, prov, body)["form"].errors[field]
    refused = client_for(prov).post(URL, body, format="json")
    assert refused.status_code == 400 and refused.json() == {field: list(shown)}
    assert not ProvisionRequest.objects.exists() and not queued


def test_the_requester_cancels_a_waiting_vm_as_the_page_does(make_user, lab_vc, fleet, queued) -> None:
    prov = make_user("prov", project=fleet, role=Role.PROVISIONER)
    api = client_for(prov)
    made = api.post(URL, ask(lab_vc, fleet), format="json").json()
    vm = made["vms"][0]["id"]
    other = client_for(make_user("prov2", project=fleet, role=Role.PROVISIONER))
    assert other.post(f"{URL}{made['id']}/vms/{vm}/cancel/").status_code == 403
    cancelled = api.post(f"{URL}{made['id']}/vms/{vm}/cancel/")
    assert cancelled.status_code == 200, cancelled.content
    assert cancelled.json()["vms"][0]["state"] == "cancelled" and cancelled.json()["status"] == "failed"
    again = api.post(f"{URL}{made['id']}/vms/{vm}/cancel/")
    assert again.status_code == 409 and "Only a VM still waiting" in again.json()["detail"]
    assert AuditEntry.objects.filter(action="provision.cancel_vm", actor=prov).count() == 1
    assert api.post(f"{URL}{made['id']}/vms/{2**63}/cancel/").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_with_the_task_queue_down_the_request_is_kept_failed_and_the_answer_is_503(
    make_user, lab_vc, fleet
) -> None:
    prov = make_user("prov", project=fleet, role=Role.PROVISIONER)
    with broker_down():
        refused = client_for(prov).post(URL, ask(lab_vc, fleet), format="json")
    assert refused.status_code == 503 and refused.json()["detail"], refused.content
    # As the page: the request is recorded, its VM failed with the reason.
    req = ProvisionRequest.objects.get()
    assert [vm.state for vm in req.vms.all()] == [ProvisionedVm.State.FAILED]
