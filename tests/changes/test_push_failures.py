"""What goes wrong: caught by validation, a service that fails after its restart, a
host lost mid-run, a worker killed mid-apply, a change that would lock the portal out."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import timedelta

import pytest

from hosts.changes import approval, errors, planning
from hosts.changes import revert as change_revert
from hosts.changes import runs as change_runs
from hosts.models import Change, ChangeRun, FileBackup
from portal.models import Role
from tests.changes.conftest import can_log_in, lab_run, set_link, wait_runs
from tests.conftest import REPO, daphne_env
from tests.lab import common
from tests.queued import record_queued

pytestmark = pytest.mark.lab


def planned(project, user, hosts, settings):  # type: ignore[no-untyped-def]
    change = Change.objects.create(project=project, title="test", settings=settings, created_by=user)
    planning.plan(change, hosts)
    return change


def sshd_pid(lab) -> str:  # type: ignore[no-untyped-def]
    return lab_run(lab, "cat /var/run/sshd.pid").strip()


def test_a_lock_out_is_refused_at_plan_time(change_lab, make_host, make_user, project) -> None:
    host = make_host(change_lab[1])
    admin = make_user("pa", project=project, role=Role.PROJECT_ADMIN)
    for settings, words in (
        ({"sshd": {"PermitRootLogin": "no"}}, "PermitRootLogin no would lock the portal out"),
        ({"sshd": {"AllowUsers": "ops"}}, "leaves out root"),
        ({"firewall": {"closed": ["tcp/22"]}}, "it is the SSH port"),
        ({"sshd": {"Port": 2222}}, "would not let SSH in on tcp/2222"),
    ):
        change = planned(project, admin, [host], settings)
        run = ChangeRun.objects.get(change=change)
        assert run.state == "refused" and words in run.reason, run.reason
        with pytest.raises(errors.ChangeError, match="Nothing to apply: refused on all hosts"):
            approval.start_apply(change, admin)


def test_validation_failure_changes_and_restarts_nothing(
    change_lab, make_host, make_user, project, celery_worker_if_brokered
) -> None:
    lab = change_lab[1]
    host = make_host(lab)
    admin = make_user("pa", project=project, role=Role.PROJECT_ADMIN)
    # A line sshd rejects, put there by hand: the renderer keeps it, sshd -t does not.
    lab_run(lab, "echo 'NoSuchOption yes' >> /etc/ssh/sshd_config")
    try:
        before, pid = lab_run(lab, "cat /etc/ssh/sshd_config"), sshd_pid(lab)
        change = planned(project, admin, [host], {"sshd": {"MaxAuthTries": 2}})
        approval.start_apply(change, admin)
        run = wait_runs(change)[host.name]
        assert run.state == "failed"
        assert "sshd -t refused" in run.reason and "nothing was changed" in run.reason
        assert lab_run(lab, "cat /etc/ssh/sshd_config") == before
        assert sshd_pid(lab) == pid
        assert ".portal-" not in lab_run(lab, "ls -A /etc/ssh")  # no temporary file left
    finally:
        lab_run(lab, "sed -i '/^NoSuchOption yes$/d' /etc/ssh/sshd_config")


def test_a_service_that_fails_after_restart_is_rolled_back_and_verified(
    change_lab, make_host, make_user, project, celery_worker_if_brokered
) -> None:
    lab = change_lab[1]
    host = make_host(lab)
    admin = make_user("pa", project=project, role=Role.PROJECT_ADMIN)
    sshd_before = lab_run(lab, "cat /etc/ssh/sshd_config")
    rules_before = lab_run(lab, "cat /etc/systemd/scripts/ip4save")
    # Something else already has the port sshd is asked to move to: sshd -t passes, the restart does not.
    lab_run(lab, "nohup python3 -m http.server 2200 >/dev/null 2>&1 &")
    try:
        common.wait_until(
            lambda: "LISTEN" in lab_run(lab, "ss -ltn 'sport = :2200'"), timeout=10, what="the squatter"
        )
        change = planned(project, admin, [host], {"sshd": {"Port": 2200}, "firewall": {"open": ["tcp/2200"]}})
        assert ChangeRun.objects.get(change=change).state == "planned"
        approval.start_apply(change, admin)
        run = wait_runs(change)[host.name]
        assert run.state == "rolled_back", f"{run.reason}\n{run.log}"
        assert run.reason.startswith("rolled back:")
        assert "a new SSH login on port 22 works" in run.log
        assert lab_run(lab, "cat /etc/ssh/sshd_config") == sshd_before
        assert lab_run(lab, "cat /etc/systemd/scripts/ip4save") == rules_before
        assert can_log_in(lab)
        change.refresh_from_db()
        assert change.status == "failed"
        host.refresh_from_db()
        assert host.ssh_port == 22
    finally:
        lab_run(lab, "pkill -f 'http.server 2200'", check=False)


def test_a_host_lost_mid_run_leaves_the_others_finished(
    change_lab, make_host, make_user, project, celery_worker_if_brokered
) -> None:
    reachable, lost = change_lab[1], change_lab[2]
    hosts = [make_host(reachable), make_host(lost)]
    admin = make_user("pa", project=project, role=Role.PROJECT_ADMIN)
    change = planned(project, admin, hosts, {"sshd": {"ClientAliveInterval": 120}})
    assert set(ChangeRun.objects.filter(change=change).values_list("state", flat=True)) == {"planned"}
    before = lab_run(reachable, "cat /etc/ssh/sshd_config")
    set_link(lost, up=False)
    try:
        approval.start_apply(change, admin)
        runs = wait_runs(change)
    finally:
        set_link(lost, up=True)
    assert runs[str(reachable["name"])].state == "applied"
    assert runs[str(lost["name"])].state == "unreachable"
    assert "nothing was changed" in runs[str(lost["name"])].reason
    change.refresh_from_db()
    assert change.status == "partial"
    # Applying again finishes the host that came back, and leaves the finished one alone.
    common.wait_until(lambda: can_log_in(lost), timeout=20, what="the lost host back")
    approval.start_apply(change, admin)
    runs = wait_runs(change)
    assert {run.state for run in runs.values()} == {"applied"}
    assert "ClientAliveInterval 120" in lab_run(lost, "cat /etc/ssh/sshd_config")
    # Put both back for the other tests.
    revert = change_revert.start_revert(change, admin)
    planning.plan(revert, hosts)
    approval.start_apply(revert, admin)
    assert {run.state for run in wait_runs(revert).values()} == {"applied"}
    assert lab_run(reachable, "cat /etc/ssh/sshd_config") == before


def test_a_worker_killed_mid_apply_leaves_the_host_interrupted_and_reapply_is_safe(
    change_lab, make_host, make_user, project, celery_worker_if_brokered, monkeypatch, tmp_path
) -> None:
    lab = change_lab[1]
    host = make_host(lab)
    admin = make_user("pa", project=project, role=Role.PROJECT_ADMIN)
    original = lab_run(lab, "cat /etc/ssh/sshd_config")
    # A slow sshd restart, so the worker can be killed while it waits on it.
    drop_in = "/etc/systemd/system/sshd.service.d/slow.conf"
    lab_run(
        lab,
        f"mkdir -p {drop_in.rsplit('/', 1)[0]} && printf '[Service]\nExecStartPre=/bin/sleep 4\n' > {drop_in}"
        " && systemctl daemon-reload >/dev/null 2>&1",
    )
    try:
        # An explicit Port line where the file had only the commented default: a listener
        # line changes, so sshd restarts (a reload would not stop it).
        change = planned(project, admin, [host], {"sshd": {"Port": 22, "MaxAuthTries": 3}})
        assert ChangeRun.objects.get(change=change).restarts == ["sshd"]

        # The task goes to a worker process of our own, the one we kill.
        record_queued(monkeypatch)
        approval.start_apply(change, admin)
        run = ChangeRun.objects.get(change=change)
        code = (
            "import django; django.setup(); from hosts.changes.tasks import apply_host; "
            f"apply_host.apply(args=[{run.pk}])"
        )
        log = (tmp_path / "worker.log").open("wb")
        worker = subprocess.Popen(
            [sys.executable, "-c", code],
            cwd=REPO,
            env=daphne_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            common.wait_until(
                lambda: "restarting sshd" in ChangeRun.objects.get(pk=run.pk).log,
                timeout=60,
                what="the restart step",
            )
            # Killed once sshd is really down (inside the slow restart), so the login
            # waited on below is the restarted sshd, not the old one about to stop.
            common.wait_until(lambda: not can_log_in(lab), timeout=30, what="sshd to stop")
        finally:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
        run.refresh_from_db()
        assert run.state == "applying"
        assert change_runs.sweep_interrupted(change=change, older_than=timedelta(0)) == 1
        run.refresh_from_db()
        assert run.state == "interrupted" and "original files are kept" in run.reason
        backup = FileBackup.objects.get(run=run, path="/etc/ssh/sshd_config")
        monkeypatch.undo()
        common.wait_until(lambda: can_log_in(lab), timeout=30, what="sshd back")
        approval.start_apply(change, admin)
        run = wait_runs(change)[host.name]
        assert run.state == "applied", f"{run.reason}\n{run.log}"
        # The backup is still the original, not the file the first attempt had written.
        assert FileBackup.objects.filter(run=run).count() == 1
        assert FileBackup.objects.get(pk=backup.pk).content == backup.content
        revert = change_revert.start_revert(change, admin)
        planning.plan(revert, [host])
        approval.start_apply(revert, admin)
        assert wait_runs(revert)[host.name].state == "applied"
        assert lab_run(lab, "cat /etc/ssh/sshd_config") == original
    finally:
        lab_run(lab, f"rm -f {drop_in} && systemctl daemon-reload >/dev/null 2>&1", check=False)
