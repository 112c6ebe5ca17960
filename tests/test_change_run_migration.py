"""hosts 0008: a change's runs keep what verifying checks, each in its own field, from the
``expect`` dictionary they had; and back again."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("hosts", "0007_deploys")]
AFTER = [("hosts", "0008_change_runs")]
EXPECT = {
    "open": [["tcp", 2376]],
    "closed": [["tcp", 2375]],
    "ssh_port": [[2222]],
    "sysctl": [["net.ipv4.ip_forward", "1"]],
    "docker_tls": [[2376]],
    "kernel_before": {"net.ipv4.ip_forward": "0"},
}


def _migrate(targets: list[tuple[str, str]]) -> Any:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def test_what_a_run_checks_moves_into_fields_and_back() -> None:
    apps = _migrate(BEFORE)
    try:
        project = apps.get_model("portal", "Project").objects.create(name="Team A")
        host = apps.get_model("hosts", "Host").objects.create(
            project_id=project.pk, name="photon-1", docker_url="tcp://127.0.0.1:9"
        )
        change = apps.get_model("hosts", "Change").objects.create(project_id=project.pk, title="TLS")
        runs = apps.get_model("hosts", "ChangeHost").objects
        run = runs.create(change_id=change.pk, host_id=host.pk, expect=EXPECT)
        other = apps.get_model("hosts", "Host").objects.create(
            project_id=project.pk, name="photon-2", docker_url="tcp://127.0.0.1:9"
        )
        rotation = runs.create(
            change_id=change.pk, host_id=other.pk, expect={"rotate": {"ssh": True, "docker": True}}
        )

        apps = _migrate(AFTER)
        moved = apps.get_model("hosts", "ChangeRun").objects.get(pk=run.pk)
        assert (moved.expect_open, moved.expect_closed) == ([["tcp", 2376]], [["tcp", 2375]])
        assert moved.expect_ssh_port == 2222 and moved.expect_sysctl == {"net.ipv4.ip_forward": "1"}
        assert moved.docker_tls and not moved.rotate_docker
        assert moved.kernel_before == {"net.ipv4.ip_forward": "0"}
        assert apps.get_model("hosts", "ChangeRun").objects.get(pk=rotation.pk).rotate_docker
        assert apps.get_model("hosts", "Change").objects.get(pk=change.pk).runs.count() == 2

        apps = _migrate(BEFORE)
        back = apps.get_model("hosts", "ChangeHost").objects.get(pk=run.pk).expect
        assert back["open"] == EXPECT["open"] and back["ssh_port"] == EXPECT["ssh_port"]
        assert back["sysctl"] == EXPECT["sysctl"] and back["kernel_before"] == EXPECT["kernel_before"]
        assert back["docker_tls"]
    finally:
        executor = MigrationExecutor(connection)
        _migrate(executor.loader.graph.leaf_nodes())  # the schema the other tests expect
