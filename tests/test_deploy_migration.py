"""Deploys recorded before they had a model become Deploy rows (hosts 0007): nothing a
person saw on My work is lost, and a request still waiting keeps its environment."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("hosts", "0006_change_rotation_credentials"), ("portal", "0004_apitoken_expiry_and_scope")]
AFTER = [("hosts", "0007_deploys")]


def _migrate(targets: list[tuple[str, str]]) -> Any:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def test_each_deploy_of_the_audit_trail_becomes_a_deploy(django_user_model: Any) -> None:
    apps = _migrate(BEFORE)
    try:
        user = django_user_model.objects.create_user("prov")
        project = apps.get_model("portal", "Project").objects.create(name="Team A")
        host = apps.get_model("hosts", "Host").objects.create(
            project_id=project.pk, name="photon-1", docker_url="tcp://127.0.0.1:9"
        )
        entries = apps.get_model("portal", "AuditEntry").objects

        def asked(token: str, image: str) -> None:
            entries.create(
                action="container.deploy",
                actor_id=user.pk,
                actor_name="prov",
                object_type="hosts.host",
                object_id=str(host.pk),
                project_id=project.pk,
                after={"image": image, "name": token, "environment_keys": ["DB"], "token": token},
            )

        def ended(token: str, outcome: str) -> None:
            entries.create(action="container.deploy_result", after={"token": token, "outcome": outcome})

        asked("ok", "busybox:1")
        ended("ok", "ok")
        asked("clash", "busybox:2")
        ended("clash", 'The name "clash" is already in use on this host.')
        asked("waiting", "busybox:3")
        apps.get_model("hosts", "DeployRequest").objects.create(
            host_id=host.pk, token="waiting", spec={"image": "busybox:3"}, environment='{"DB": "s3cret"}'
        )
        asked("lost", "busybox:4")
        entries.create(
            action="container.deploy", object_type="hosts.host", object_id="999", after={"token": "x"}
        )

        apps = _migrate(AFTER)
        deploys = {d.token: d for d in apps.get_model("hosts", "Deploy").objects.all()}
        assert sorted(deploys) == ["clash", "lost", "ok", "waiting"]  # the gone host's is not made up
        assert (deploys["ok"].state, deploys["ok"].outcome) == ("success", "")
        assert deploys["clash"].state == "error" and "already in use" in deploys["clash"].outcome
        assert deploys["waiting"].state == "queued" and deploys["waiting"].environment == '{"DB": "s3cret"}'
        assert deploys["lost"].state == "error" and deploys["lost"].outcome
        assert all(d.actor_id == user.pk and d.host_id == host.pk for d in deploys.values())
        assert deploys["ok"].spec["image"] == "busybox:1" and "environment" not in deploys["ok"].spec
    finally:
        executor = MigrationExecutor(connection)
        _migrate(executor.loader.graph.leaf_nodes())  # the schema the other tests expect
