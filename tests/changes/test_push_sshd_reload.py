"""An sshd change applied by reload keeps the sessions already open and is verified by a
new login; a Port change restarts; a failed reload is rolled back. Real lab hosts."""

from __future__ import annotations

import concurrent.futures
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hosts.changes import approval as change_approval
from hosts.changes import planning
from hosts.models import Change, ChangeRun
from hosts.templatetags.change_tags import service_actions
from portal.models import Role
from tests.changes.conftest import can_log_in, lab_run, wait_runs
from tests.changes.test_push_sshd import add_ops_user

pytestmark = pytest.mark.lab

#: The run's own SSH session waits this long at most for a line from the host.
READ_TIMEOUT = 30


class Session:
    """An interactive SSH session opened by the test (OpenSSH's client): open before the
    change, it must still answer after it."""

    def __init__(self, lab: dict[str, Any], workdir: Path) -> None:
        known = workdir / "known_hosts"
        known.write_text(f"{lab['address']} {lab['host_key']}\n")
        self.proc = subprocess.Popen(
            [
                "ssh",
                "-i",
                str(lab["private_key"]),
                "-o",
                f"UserKnownHostsFile={known}",
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "BatchMode=yes",
                f"{lab['user']}@{lab['address']}",
                "sh",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.pool = concurrent.futures.ThreadPoolExecutor(1)

    def ask(self, command: str) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self.pool.submit(self.proc.stdout.readline).result(timeout=READ_TIMEOUT).strip()

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self.pool.shutdown(wait=False)


@pytest.fixture
def session(change_lab, tmp_path: Path) -> Iterator[Session]:  # type: ignore[no-untyped-def]
    opened = Session(change_lab[2], tmp_path)
    yield opened
    opened.close()


def sshd_pid(lab: dict[str, Any]) -> str:
    return lab_run(lab, "cat /run/sshd.pid").strip()


def planned(project: Any, admin: Any, host: Any, settings: dict[str, Any]) -> ChangeRun:
    change = Change.objects.create(project=project, title="sshd", settings=settings, created_by=admin)
    planning.plan(change, [host])
    run = ChangeRun.objects.get(change=change)
    assert run.state == "planned", run.reason
    return run


def test_an_sshd_change_is_applied_by_reload_and_keeps_open_sessions(
    change_lab, make_host, make_user, project, session, celery_worker_if_brokered
) -> None:
    lab = change_lab[2]
    add_ops_user(lab)
    host = make_host(lab)
    admin = make_user("pa", project=project, role=Role.PROJECT_ADMIN)
    original = lab_run(lab, "cat /etc/ssh/sshd_config")
    assert session.ask("echo before") == "before"
    pid = sshd_pid(lab)

    run = planned(project, admin, host, {"sshd": {"AllowUsers": "root", "MaxAuthTries": 3}})
    assert run.restarts == ["reload sshd"]
    assert service_actions(run.restarts) == ["reloads sshd"]  # what the approver sees

    change_approval.start_apply(run.change, admin)
    run = wait_runs(run.change)[host.name]
    assert run.state == "applied", f"{run.reason}\n{run.log}"
    assert "reloading sshd" in run.log and "restarting sshd" not in run.log
    assert "a new SSH login on port 22 works" in run.log
    assert sshd_pid(lab) == pid  # the same sshd, reloaded: not stopped and started again
    assert session.ask("echo after") == "after"  # the session open before the change carries on
    assert not can_log_in(lab, user="ops")  # a new login meets the new settings
    assert can_log_in(lab, user="root")

    lab_run(lab, f"cat > /etc/ssh/sshd_config <<'EOF'\n{original}EOF\nsystemctl reload sshd")
    assert can_log_in(lab, user="ops")


def test_a_port_change_restarts_sshd(
    change_lab, make_host, make_user, project, celery_worker_if_brokered
) -> None:
    lab = change_lab[2]
    host = make_host(lab)
    admin = make_user("pa", project=project, role=Role.PROJECT_ADMIN)
    pid = sshd_pid(lab)
    settings = {"sshd": {"Port": 2202}, "firewall": {"open": ["tcp/2202"]}}
    run = planned(project, admin, host, settings)
    assert run.restarts == ["iptables", "sshd"]
    assert service_actions(run.restarts) == ["restarts iptables", "restarts sshd"]

    change_approval.start_apply(run.change, admin)
    run = wait_runs(run.change)[host.name]
    try:
        assert run.state == "applied", f"{run.reason}\n{run.log}"
        assert "restarting sshd" in run.log and "reloading sshd" not in run.log
        assert "a new SSH login on port 2202 works" in run.log
        assert sshd_pid(dict(lab, port=2202)) != pid
        assert not can_log_in(lab) and can_log_in(lab, port=2202)
    finally:
        # Back to port 22 for the next test, as a person would (not through the portal).
        lab_run(
            lab,
            "sed -i 's/^Port 2202$/#Port 22/' /etc/ssh/sshd_config && systemctl restart sshd",
            port=2202,
            check=False,
        )
    assert can_log_in(lab)


def test_a_failed_reload_is_rolled_back_and_reloaded(
    change_lab, make_host, make_user, project, session, celery_worker_if_brokered
) -> None:
    lab = change_lab[2]
    host = make_host(lab)
    admin = make_user("pa", project=project, role=Role.PROJECT_ADMIN)
    original = lab_run(lab, "cat /etc/ssh/sshd_config")
    pid = sshd_pid(lab)
    drop_in = "/etc/systemd/system/sshd.service.d/fail-one-reload.conf"
    # The first reload fails (as when the unit's reload command does), the next one works.
    lab_run(
        lab,
        f"mkdir -p {drop_in.rsplit('/', 1)[0]} && touch /run/fail-one-reload && "
        f"printf '[Service]\\nExecReload=\\nExecReload=/bin/sh -c \"if rm /run/fail-one-reload 2>/dev/null; "
        f"then exit 1; fi; kill -HUP $MAINPID\"\\n' > {drop_in} && systemctl daemon-reload >/dev/null 2>&1",
    )
    try:
        run = planned(project, admin, host, {"sshd": {"ClientAliveInterval": 45}})
        assert run.restarts == ["reload sshd"]
        change_approval.start_apply(run.change, admin)
        run = wait_runs(run.change)[host.name]
        assert run.state == "rolled_back", f"{run.reason}\n{run.log}"
        assert run.reason.startswith("rolled back: reloading failed: sshd did not reload")
        assert "a new SSH login on port 22 works" in run.log
        assert lab_run(lab, "cat /etc/ssh/sshd_config") == original
        assert sshd_pid(lab) == pid  # the rollback reloaded it too
        assert session.ask("echo still") == "still"
    finally:
        lab_run(lab, f"rm -f {drop_in} /run/fail-one-reload && systemctl daemon-reload >/dev/null 2>&1")
