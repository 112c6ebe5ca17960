"""Deploying a template, up to the plan: where each replica goes and why, shown before anything
starts; a plan that cannot fit names the rule; variables, names and roles checked. No engine
is asked here (the lab test deploys for real: tests/apps/test_deploy_on_lab.py)."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from hosts.applications import catalog
from hosts.models import Application, AppTemplate, Host, HostStatus, Tag
from portal.models import AuditEntry, Role

pytestmark = pytest.mark.django_db

GiB = 1024**3
SHOP = """\
services:
  web:
    image: lab/busybox:1.35
    deploy: {replicas: 2}
    x-portal: {tags: [front]}
  db:
    image: lab/busybox:1.35
    environment:
      PASSWORD: ${DB_PASSWORD:?the database password}
    deploy: {resources: {reservations: {memory: 3g}}}
"""


@pytest.fixture
def template(people: dict[str, Any], project: Any) -> AppTemplate:
    return catalog.save(people["manager"], catalog.Draft(name="Shop", source=SHOP), project=project).template


def _host(project: Any, name: str, memory: int, *tags: str, status: str = HostStatus.ON) -> Host:
    host = Host.objects.create(
        project=project, name=name, docker_url=f"tcp://{name}:2376", status=status, memory=memory, cpus=4
    )
    host.tags.set([Tag.objects.get_or_create(name=t)[0] for t in tags])
    return host


def _post(client: Any, template: AppTemplate, step: str, **fields: str) -> str:
    data = {"name": "shop", "var_DB_PASSWORD": "s3cret-value", "step": step, **fields}
    return client.post(reverse("hosts:app_deploy", args=[template.pk]), data).content.decode()


def test_the_plan_says_where_each_replica_goes_and_why_before_anything_starts(
    client, people, project, template
) -> None:
    _host(project, "photon-1", 8 * GiB, "front")
    _host(project, "photon-2", 4 * GiB, "front")
    _host(project, "photon-db", 16 * GiB)
    client.force_login(people["provisioner"])
    page = _post(client, template, "plan")
    assert 'id="deploy-plan"' in page and 'id="deploy-button"' in page
    # Two web replicas spread over the two hosts tagged front; the database where memory is.
    assert page.count('<td class="left">web</td>') == 2
    assert "photon-1" in page and "photon-2" in page and "photon-db" in page
    assert "tagged front" in page
    assert not Application.objects.exists()


def test_a_plan_that_cannot_fit_names_the_rule_and_offers_no_deploy(
    client, people, project, template
) -> None:
    _host(project, "photon-1", 8 * GiB, "front")
    _host(project, "photon-2", 2 * GiB, "front", status=HostStatus.OFF)
    client.force_login(people["provisioner"])
    page = _post(client, template, "plan")
    assert "The plan does not fit: web:" in page and 'id="deploy-button"' not in page
    # Asking to deploy anyway deploys nothing.
    _post(client, template, "deploy")
    assert not Application.objects.exists()


def test_a_missing_variable_is_named_and_its_value_never_shown_back(
    client, people, project, template
) -> None:
    _host(project, "photon-1", 8 * GiB, "front")
    client.force_login(people["provisioner"])
    page = _post(client, template, "plan", var_DB_PASSWORD="")
    assert "DB_PASSWORD" in page and "the database password" in page
    assert 'id="deploy-plan"' not in page


def test_deploying_records_the_application_and_audits_no_secret(client, people, project, template) -> None:
    a = _host(project, "photon-1", 8 * GiB, "front")
    _host(project, "photon-2", 8 * GiB, "front")
    client.force_login(people["provisioner"])
    client.post(
        reverse("hosts:app_deploy", args=[template.pk]),
        {"name": "shop", "var_DB_PASSWORD": "s3cret-value", "step": "deploy", "one_host": ""},
    )
    application = Application.objects.get(name="shop")
    assert application.created_by == people["provisioner"]
    assert sorted((p.service, p.replica) for p in application.placements.all()) == [
        ("db", 1),
        ("web", 1),
        ("web", 2),
    ]
    entry = AuditEntry.objects.get(action="app.deploy")
    assert entry.after["variables"] == ["DB_PASSWORD"] and "s3cret-value" not in str(entry.after)
    assert "s3cret-value" not in client.get(reverse("hosts:app", args=[application.pk])).content.decode()
    # The database keeps the value encrypted: not the text typed.
    from django.db import connection  # raw SQL: what the ORM decrypts must be ciphertext on disk

    with connection.cursor() as cursor:
        cursor.execute("SELECT variables FROM hosts_application WHERE id = %s", [application.pk])
        assert "s3cret-value" not in cursor.fetchone()[0]
    # What it reserves counts against later plans: the db's 3 GiB are taken on its host.
    db_host = application.placements.get(service="db").host
    assert db_host in (a, Host.objects.get(name="photon-2"))
    # The name is in use now.
    again = _post(client, template, "plan")
    assert "An application named &#x27;shop&#x27; is deployed already." in again


def test_who_may_deploy(client, people, project, other_project, template, make_user) -> None:
    _host(project, "photon-1", 8 * GiB, "front")
    url = reverse("hosts:app_deploy", args=[template.pk])
    client.force_login(people["viewer"])
    assert client.get(url).status_code == 403
    assert client.post(url, {"name": "shop", "step": "deploy"}).status_code == 403
    stranger = make_user("stranger", project=other_project, role=Role.PROJECT_ADMIN)
    client.force_login(stranger)
    assert client.get(url).status_code == 404
    assert client.post(url, {"name": "shop", "step": "deploy", "var_DB_PASSWORD": "x"}).status_code == 404
    assert not Application.objects.exists()


def test_a_bad_name_is_refused(client, people, project, template) -> None:
    _host(project, "photon-1", 8 * GiB, "front")
    client.force_login(people["provisioner"])
    for name in ("Shop", "-x", "a b", "x" * 64):
        page = _post(client, template, "plan", name=name)
        assert 'id="deploy-plan"' not in page, name
