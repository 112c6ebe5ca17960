"""The request form and a request's page: who may, what a refusal looks like."""

from __future__ import annotations

import pytest
from django.urls import reverse

from hosts.models import ProvisionedVm, ProvisionRequest
from hosts.provision import tasks as provision_tasks
from portal.models import Project
from tests.conftest import PASSWORD
from tests.provision.conftest import other_template, photon_template
from tests.queued import record_queued

pytestmark = pytest.mark.django_db


def form_data(vcenter, project, template, **fields):  # type: ignore[no-untyped-def]
    data = {
        "project": project.pk,
        "vcenter": vcenter.pk,
        "template": template.pk,
        "cpus": 1,
        "memory_mb": 512,
        "count": 1,
        "name_pattern": "viewmade-{n}",
    }
    data.update(fields)
    return data


def login(client, user) -> None:  # type: ignore[no-untyped-def]
    assert client.login(username=user.username, password=PASSWORD)


def test_a_provisioner_requests_clones_and_sees_progress(
    client, make_user, synced_vc, project, django_capture_on_commit_callbacks, monkeypatch
) -> None:
    queued = record_queued(monkeypatch, lambda _name, args: args)
    login(client, make_user("prov", project=project, role="provisioner"))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("hosts:provision_new"), form_data(synced_vc, project, photon_template(synced_vc))
        )
    assert response.status_code == 302, response.content.decode()[:2000]
    req = ProvisionRequest.objects.get()
    assert queued == [(req.pk, "http://testserver/")]
    provision_tasks.run_request(*queued[0])
    page = client.get(reverse("hosts:provision_request", args=[req.pk]))
    assert page.status_code == 200
    assert ProvisionedVm.objects.get().state == ProvisionedVm.State.WAITING
    assert b"Waiting for enrollment" in page.content and b"viewmade-1" in page.content
    # The rows alone: what the page reads once it is subscribed, so no event is missed in between.
    rows = client.get(reverse("hosts:provision_request", args=[req.pk]), {"rows": "1"})
    assert rows.content.decode().strip().startswith('<tr id="provision-vm-') and b"<html" not in rows.content


def test_a_refusal_is_a_clear_message_and_changes_nothing(client, make_user, synced_vc, project) -> None:
    login(client, make_user("prov", project=project, role="provisioner"))
    response = client.post(
        reverse("hosts:provision_new"), form_data(synced_vc, project, other_template(synced_vc))
    )
    assert response.status_code == 400
    assert b"not a Photon OS template" in response.content
    assert not ProvisionRequest.objects.exists()


def test_a_bad_name_pattern_is_refused_by_the_form(client, make_user, synced_vc, project) -> None:
    login(client, make_user("prov", project=project, role="provisioner"))
    data = form_data(synced_vc, project, photon_template(synced_vc), count=2, name_pattern="same")
    response = client.post(reverse("hosts:provision_new"), data)
    assert response.status_code == 400 and b"must contain {n}" in response.content
    assert not ProvisionRequest.objects.exists()


def test_viewers_see_but_cannot_request_and_outsiders_see_nothing(
    client, make_user, synced_vc, project
) -> None:
    req = ProvisionRequest.objects.create(
        project=project, vcenter=synced_vc, template="vm-1", count=1, name_pattern="x-{n}"
    )
    login(client, make_user("viewer", project=project, role="viewer"))
    assert client.get(reverse("hosts:provision_request", args=[req.pk])).status_code == 200
    assert client.get(reverse("hosts:provision_new")).status_code == 403
    data = form_data(synced_vc, project, photon_template(synced_vc))
    assert client.post(reverse("hosts:provision_new"), data).status_code == 403
    other = Project.objects.create(name="other")
    login(client, make_user("outsider", project=other, role="project_admin"))
    assert client.get(reverse("hosts:provision_request", args=[req.pk])).status_code == 404
    assert b"x-{n}" not in client.get(reverse("hosts:provision")).content
    # A provisioner of another project cannot provision into this one.
    response = client.post(
        reverse("hosts:provision_new"), form_data(synced_vc, project, photon_template(synced_vc))
    )
    assert response.status_code in (400, 403) and not ProvisionRequest.objects.exclude(pk=req.pk).exists()
