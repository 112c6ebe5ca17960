"""Deploying through the API and ``manage.py app``: the same plan, the same refusals as the pages
(hosts.applications.deployments), and no variable's value ever given back."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from hosts.applications import catalog
from hosts.models import Application, AppTemplate, Host, HostStatus
from portal.models import Membership, Role
from tests.api.common import client_for

pytestmark = pytest.mark.django_db

SOURCE = """\
services:
  web:
    image: lab/busybox:1.35
    environment: {TOKEN: "${TOKEN:?a token}"}
    deploy: {replicas: 2}
"""


@pytest.fixture
def template(people: dict[str, Any], project: Any) -> AppTemplate:
    for name in ("photon-1", "photon-2"):
        Host.objects.create(
            project=project, name=name, docker_url=f"tcp://{name}:2376", status=HostStatus.ON, memory=2**31
        )
    return catalog.save(people["manager"], catalog.Draft(name="web", source=SOURCE), project=project).template


def test_the_api_plans_without_starting_and_deploys_as_planned(people, template) -> None:
    api = client_for(people["provisioner"])
    body = {"name": "web", "variables": {"TOKEN": "t0ps3cret"}}
    plan = api.post(f"/api/app-templates/{template.pk}/plan/", body, format="json")
    assert plan.status_code == 200 and plan.json()["ok"] is True
    assert sorted(p["host"] for p in plan.json()["placements"]) == ["photon-1", "photon-2"]
    assert not Application.objects.exists()

    deployed = api.post(f"/api/app-templates/{template.pk}/deploy/", body, format="json")
    assert deployed.status_code == 202, deployed.content
    assert deployed.json()["variables"] == ["TOKEN"] and "t0ps3cret" not in deployed.content.decode()
    pk = deployed.json()["id"]
    listed = api.get("/api/applications/").json()
    assert [a["id"] for a in listed["results"]] == [pk] and "t0ps3cret" not in str(listed)
    assert len(api.get(f"/api/applications/{pk}/").json()["placements"]) == 2


def test_the_api_refuses_as_the_pages_do(people, template, other_project) -> None:
    api = client_for(people["provisioner"])
    missing = api.post(f"/api/app-templates/{template.pk}/plan/", {"name": "web"}, format="json")
    assert missing.status_code == 400 and any("TOKEN" in m for m in missing.json()["variables"])
    too_many = SOURCE.replace("replicas: 2", "replicas: 3")
    catalog.save(people["manager"], catalog.Draft(name="web", source=too_many), template=template)
    body = {"name": "web", "variables": {"TOKEN": "x"}}
    unfit = api.post(f"/api/app-templates/{template.pk}/deploy/", body, format="json")
    assert unfit.status_code == 409 and "The plan does not fit: web:" in unfit.json()["detail"]
    assert (
        api.post(
            f"/api/app-templates/{template.pk}/deploy/", {**body, "version": 1}, format="json"
        ).status_code
        == 202
    )
    taken = api.post(f"/api/app-templates/{template.pk}/plan/", {**body, "version": 1}, format="json")
    assert taken.status_code == 409 and "deployed already" in str(taken.json())

    viewer = client_for(people["viewer"])
    assert viewer.post(f"/api/app-templates/{template.pk}/plan/", body, format="json").status_code == 403
    Membership.objects.create(user=people["outsider"], project=other_project, role=Role.PROJECT_ADMIN)
    outsider = client_for(people["outsider"])
    assert outsider.post(f"/api/app-templates/{template.pk}/deploy/", body, format="json").status_code == 404
    application = Application.objects.get()
    assert outsider.post(f"/api/applications/{application.pk}/remove/", {}, format="json").status_code == 404
    assert viewer.post(f"/api/applications/{application.pk}/remove/", {}, format="json").status_code == 403
    assert Application.objects.count() == 1


def test_the_command_plans_and_refuses_with_its_exit_codes(people, template) -> None:
    out = StringIO()
    call_command("app", "plan", "web", "--user", "prov", "--var", "TOKEN=x", stdout=out)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and all(line.startswith("web-") and "photon-" in line for line in lines)
    assert not Application.objects.exists()
    with pytest.raises(CommandError) as refused:
        call_command("app", "plan", "web", "--user", "viewer", "--var", "TOKEN=x", stdout=StringIO())
    assert refused.value.returncode == 2
    with pytest.raises(CommandError) as missing:
        call_command("app", "deploy", "web", "--user", "prov", stdout=StringIO())
    assert missing.value.returncode == 2 and "TOKEN" in str(missing.value)
    with pytest.raises(CommandError) as bad:
        call_command("app", "plan", "web", "--user", "prov", "--var", "TOKEN", stdout=StringIO())
    assert bad.value.returncode == 2
    assert not Application.objects.exists()


def test_the_api_operates_scales_and_updates_through_the_pages_rules(people, template, monkeypatch) -> None:
    from hosts.applications import operation_tasks, tasks  # patched: nothing reaches an engine here

    asked: list[tuple[str, Any]] = []
    monkeypatch.setattr(
        operation_tasks, "queue_action", lambda app, action, service: asked.append((action, service))
    )
    monkeypatch.setattr(
        operation_tasks, "queue_add", lambda app, service, numbers: asked.append(("add", numbers))
    )
    monkeypatch.setattr(tasks, "queue_deploy", lambda app, refresh=False: asked.append(("deploy", refresh)))
    api = client_for(people["provisioner"])
    body = {"name": "web", "variables": {"TOKEN": "x"}}
    pk = api.post(f"/api/app-templates/{template.pk}/deploy/", body, format="json").json()["id"]
    Application.objects.filter(pk=pk).update(state=Application.State.RUNNING)

    assert (
        api.post(
            f"/api/applications/{pk}/operate/", {"action": "stop", "service": "web"}, format="json"
        ).status_code
        == 202
    )
    assert (
        api.post(f"/api/applications/{pk}/operate/", {"action": "explode"}, format="json").status_code == 400
    )
    unfit = api.post(f"/api/applications/{pk}/scale/", {"service": "web", "replicas": 3}, format="json")
    assert unfit.status_code == 409 and "does not fit" in unfit.json()["detail"]
    assert (
        api.post(
            f"/api/applications/{pk}/scale/", {"service": "web", "replicas": 21}, format="json"
        ).status_code
        == 400
    )
    catalog.save(people["manager"], catalog.Draft(name="web", source=SOURCE + "# v2\n"), template=template)
    updated = api.post(f"/api/applications/{pk}/update/", {}, format="json")
    assert updated.status_code == 202 and updated.json()["template_version"] == 2
    assert asked == [("deploy", False), ("stop", "web"), ("deploy", True)]
    viewer = client_for(people["viewer"])
    assert (
        viewer.post(f"/api/applications/{pk}/operate/", {"action": "stop"}, format="json").status_code == 403
    )
