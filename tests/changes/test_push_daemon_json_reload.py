"""A daemon.json change dockerd can reload is applied by SIGHUP and read back through its
API; an option outside its reloadable set restarts it. A real lab host running dockerd."""

from __future__ import annotations

from typing import Any

import pytest

from hosts.changes import approval as change_approval
from hosts.changes import planning
from hosts.models import Change, ChangeRun
from portal.models import Role
from tests.changes.conftest import lab_run, wait_runs

pytestmark = pytest.mark.lab


def dockerd_pid(lab: dict[str, Any]) -> str:
    return lab_run(lab, "cat /run/docker.pid").strip()


def applied(project: Any, admin: Any, host: Any, settings: dict[str, Any]) -> ChangeRun:
    change = Change.objects.create(project=project, title="daemon.json", settings=settings, created_by=admin)
    planning.plan(change, [host])
    assert ChangeRun.objects.get(change=change).state == "planned"
    change_approval.start_apply(change, admin)
    return wait_runs(change)[host.name]


def test_a_reloadable_daemon_json_change_reloads_and_one_that_is_not_restarts(
    change_lab, make_host, make_user, project, celery_worker_if_brokered
) -> None:
    lab = change_lab[0]
    host = make_host(lab)
    admin = make_user("pa", project=project, role=Role.PROJECT_ADMIN)
    pid = dockerd_pid(lab)

    reloadable = {"live-restore": True, "insecure-registries": ["10.9.8.7:5000"]}
    run = applied(project, admin, host, {"daemon_json": reloadable})
    assert run.restarts == ["reload docker"]
    assert run.state == "applied", f"{run.reason}\n{run.log}"
    assert "dockerd answers a new API call with the daemon.json settings" in run.log
    assert dockerd_pid(lab) == pid  # the same dockerd: reloaded, not restarted
    assert lab_run(lab, "docker info --format '{{.LiveRestoreEnabled}}'").strip() == "true"

    run = applied(project, admin, host, {"daemon_json": {"log-driver": "local"}})
    assert run.restarts == ["docker"]
    assert run.state == "applied", f"{run.reason}\n{run.log}"
    assert "restarting docker" in run.log
    assert dockerd_pid(lab) != pid
    assert lab_run(lab, "docker info --format '{{.LoggingDriver}}'").strip() == "local"
