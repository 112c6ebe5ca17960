"""Updating an application to another version of its template, and rolling it back: the rules
(who, when, what may change) before anything is queued (the lab test runs it for real:
tests/apps/test_deploy_on_lab.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.urls import reverse

from hosts.applications import catalog, deployments, tasks
from hosts.models import Application, ApplicationPlacement, Host, HostStatus
from portal.models import AuditEntry
from portal.refused import Refused

pytestmark = pytest.mark.django_db

V1 = "services:\n  web:\n    image: lab/busybox:1.35\n    environment: {GREETING: '${GREETING:-one}'}\n"


@pytest.fixture
def running(people: dict[str, Any], project: Any, monkeypatch: pytest.MonkeyPatch) -> Application:
    host = Host.objects.create(
        project=project, name="photon-1", docker_url="tcp://photon-1:2376", status=HostStatus.ON
    )
    version = catalog.save(people["manager"], catalog.Draft(name="web", source=V1), project=project)
    application = Application.objects.create(
        project=project,
        name="web",
        template=version.template,
        version=version,
        source=V1,
        variables=json.dumps({"GREETING": "hi"}),
        state=Application.State.RUNNING,
    )
    ApplicationPlacement.objects.create(application=application, service="web", replica=1, host=host)
    return application


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, bool]]:
    found: list[tuple[int, bool]] = []
    monkeypatch.setattr(tasks, "queue_deploy", lambda app, refresh=False: found.append((app.pk, refresh)))
    return found


def test_an_update_records_the_versions_and_queues_a_refreshing_deploy(people, running, queued) -> None:
    v2 = V1.replace("one", "two")
    catalog.save(people["manager"], catalog.Draft(name="web", source=v2), template=running.template)
    target = deployments.request_update(people["provisioner"], running)
    running.refresh_from_db()
    assert target.number == 2 and running.version == target and running.previous_version.number == 1
    assert running.source == v2 and running.state == "queued" and queued == [(running.pk, True)]
    entry = AuditEntry.objects.get(action="app.update")
    assert entry.before == {"version": 1} and entry.after == {"version": 2}
    # Its values stay: the variables are the application's, not the version's.
    assert tasks.values_of(running) == {"GREETING": "hi"}


def test_an_update_that_changes_the_replicas_or_needs_a_new_value_is_refused(people, running, queued) -> None:
    more = V1 + "    deploy: {replicas: 2}\n"
    catalog.save(people["manager"], catalog.Draft(name="web", source=more), template=running.template)
    with pytest.raises(Refused, match="runs other services or replicas"):
        deployments.request_update(people["provisioner"], running)
    token = "{GREETING: '${GREETING}', TOKEN: '${TOKEN:?a token}'}"
    needs = V1.replace("{GREETING: '${GREETING:-one}'}", token)
    catalog.save(people["manager"], catalog.Draft(name="web", source=needs), template=running.template)
    with pytest.raises(Refused) as refused:
        deployments.request_update(people["provisioner"], running)
    assert "TOKEN" in " ".join(refused.value.details)
    running.refresh_from_db()
    assert running.version.number == 1 and running.state == "running" and queued == []
    assert not AuditEntry.objects.filter(action="app.update").exists()


def test_who_and_when_may_update(client, people, running, queued, make_user, other_project) -> None:
    url = reverse("hosts:app_update", args=[running.pk])
    client.force_login(people["viewer"])
    assert client.post(url).status_code == 403
    client.force_login(make_user("stranger", project=other_project, role="project_admin"))
    assert client.post(url).status_code == 404
    Application.objects.filter(pk=running.pk).update(state=Application.State.DEPLOYING)
    client.force_login(people["provisioner"])
    client.post(url)
    page = client.get(reverse("hosts:app", args=[running.pk])).content.decode()
    assert "is not now" in page and queued == []
    # The page offers the versions, and a roll back once there is a version before.
    Application.objects.filter(pk=running.pk).update(state=Application.State.RUNNING)
    assert 'id="app-update"' in client.get(reverse("hosts:app", args=[running.pk])).content.decode()
