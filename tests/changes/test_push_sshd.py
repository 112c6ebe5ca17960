"""An sshd change through plan, apply and revert, against real lab hosts."""

from __future__ import annotations

import pytest

from hosts.changes import approval as change_approval
from hosts.changes import planning
from hosts.changes import revert as change_revert
from hosts.models import Change, ChangeRun, FileBackup
from portal.models import AuditEntry, Role
from tests.changes.conftest import can_log_in, lab_run, wait_runs

pytestmark = pytest.mark.lab


def add_ops_user(lab) -> None:  # type: ignore[no-untyped-def]
    # A second account with the portal's key: who may log in is what the change decides.
    lab_run(
        lab,
        "id ops >/dev/null 2>&1 || useradd -m -s /bin/sh ops; install -d -m 700 -o ops /home/ops/.ssh; "
        "install -m 600 -o ops /root/.ssh/authorized_keys /home/ops/.ssh/authorized_keys; "
        "passwd -d ops >/dev/null; "
        "usermod -p '*' ops",
    )


def test_sshd_change_changes_who_may_log_in_and_revert_restores_bytes(
    change_lab, make_host, make_user, project, celery_worker_if_brokered
) -> None:
    lab = change_lab[1]
    add_ops_user(lab)
    assert can_log_in(lab, user="ops")
    original = lab_run(lab, "cat /etc/ssh/sshd_config")
    host = make_host(lab)
    admin = make_user("pa", project=project, role=Role.PROJECT_ADMIN)
    change = Change.objects.create(
        project=project,
        title="only root",
        settings={"sshd": {"AllowUsers": "root", "MaxAuthTries": 3}},
        created_by=admin,
    )
    planning.plan(change, [host])
    run = ChangeRun.objects.get(change=change)
    assert run.state == "planned", run.reason
    assert run.restarts == ["reload sshd"]  # AllowUsers and MaxAuthTries: sshd rereads them on SIGHUP
    diff = run.files[0]["diff"]
    assert "+AllowUsers root" in diff and "-MaxAuthTries 4" in diff and "+MaxAuthTries 3" in diff
    assert lab_run(lab, "cat /etc/ssh/sshd_config") == original  # a plan writes nothing
    change.refresh_from_db()
    assert change.status == "planned"  # a Project admin's own plan needs no second approval

    change_approval.start_apply(change, admin)
    runs = wait_runs(change)
    assert runs[host.name].state == "applied", runs[host.name].reason
    assert not can_log_in(lab, user="ops")
    assert can_log_in(lab, user="root")
    assert "allowusers root" in lab_run(lab, "sshd -T").splitlines()
    backup = FileBackup.objects.get(run=runs[host.name], path="/etc/ssh/sshd_config")
    assert backup.existed
    change.refresh_from_db()
    assert change.status == "applied"
    actions = set(AuditEntry.objects.filter(object_id=str(change.pk)).values_list("action", flat=True))
    assert {"change.plan", "change.apply", "change.applied"} <= actions

    revert = change_revert.start_revert(change, admin)
    planning.plan(revert, [host])
    revert_run = ChangeRun.objects.get(change=revert)
    assert revert_run.state == "planned" and "-AllowUsers root" in revert_run.files[0]["diff"]
    change_approval.start_apply(revert, admin)
    runs = wait_runs(revert)
    assert runs[host.name].state == "applied", runs[host.name].reason
    assert lab_run(lab, "cat /etc/ssh/sshd_config") == original
    assert can_log_in(lab, user="ops")
    assert "change.revert" in set(AuditEntry.objects.values_list("action", flat=True))
