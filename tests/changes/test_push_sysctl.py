"""Kernel parameters pushed to the lab's Photon-like hosts: applied with ``sysctl -p`` and
read back from the kernel; a key the host's kernel lacks is refused before anything is
written; a value the kernel refuses is rolled back; undo restores the file."""

from __future__ import annotations

import pytest

from hosts.changes import approval, planning
from hosts.changes import revert as change_revert
from hosts.changes.files import sysctl
from portal.models import Role
from tests.changes.conftest import lab_run, wait_runs
from tests.changes.test_push_docker_and_firewall import applied, planned

pytestmark = pytest.mark.lab

KEYS = ("net.ipv4.tcp_keepalive_time", "net.core.somaxconn")


def kernel(lab, keys=KEYS) -> list[str]:  # type: ignore[no-untyped-def]
    return lab_run(lab, "sysctl -n " + " ".join(keys)).split()


def file_on(lab) -> str:  # type: ignore[no-untyped-def]
    return lab_run(lab, f"cat {sysctl.PATH} 2>/dev/null || echo ABSENT")


def test_kernel_parameters_are_applied_read_back_and_undone(
    change_lab, make_host, make_user, project, celery_worker_if_brokered
) -> None:
    lab = change_lab[2]
    host = make_host(lab)
    admin = make_user("pa", project=project, role=Role.PROJECT_ADMIN)
    assert file_on(lab).strip() == "ABSENT"
    before = kernel(lab)
    wanted = ["777", "1024"] if before != ["777", "1024"] else ["778", "1025"]
    change = planned(project, admin, host, {"sysctl": dict(zip(KEYS, wanted, strict=True))})
    plan = change.runs.get()
    assert plan.state == "planned" and plan.restarts == ["sysctl"], plan.reason
    assert f"+{KEYS[0]} = {wanted[0]}" in plan.files[0]["diff"]

    run = applied(change, admin, host)
    assert run.state == "applied", f"{run.reason}\n{run.log}"
    assert "2 kernel parameter(s) read back as set" in run.log
    assert kernel(lab) == wanted
    assert file_on(lab) == sysctl.HEADER + "".join(f"{k} = {v}\n" for k, v in zip(KEYS, wanted, strict=True))

    # Undo: the file is gone again, as it was, and the kernel has its earlier values back.
    revert = change_revert.start_revert(change, admin)
    planning.plan(revert, [host])
    approval.start_apply(revert, admin)
    undone = wait_runs(revert)[host.name]
    assert undone.state == "applied", f"{undone.reason}\n{undone.log}"
    assert file_on(lab).strip() == "ABSENT"
    assert kernel(lab) == before


def test_a_key_the_kernel_lacks_is_refused_before_anything_is_written(
    change_lab, make_host, make_user, project, celery_worker_if_brokered
) -> None:
    lab = change_lab[2]
    host = make_host(lab)
    admin = make_user("pa", project=project, role=Role.PROJECT_ADMIN)
    before = file_on(lab)
    change = planned(project, admin, host, {"sysctl": {"net.ipv4.no_such_parameter": "1"}})
    run = applied(change, admin, host)
    assert run.state == "failed" and "no parameter net.ipv4.no_such_parameter" in run.reason, run.log
    assert "nothing was changed" in run.reason
    assert file_on(lab) == before


def test_a_value_the_kernel_refuses_is_rolled_back(
    change_lab, make_host, make_user, project, celery_worker_if_brokered
) -> None:
    lab = change_lab[2]
    host = make_host(lab)
    admin = make_user("pa", project=project, role=Role.PROJECT_ADMIN)
    before_file, before_kernel = file_on(lab), kernel(lab)
    # sysctl -p sets the good value before it fails on the other: the rollback puts it back.
    keepalive = str(int(before_kernel[0]) + 1)
    settings = {"sysctl": {KEYS[0]: keepalive, KEYS[1]: "lots"}}
    run = applied(planned(project, admin, host, settings), admin, host)
    assert run.state == "rolled_back" and "the kernel refused a parameter" in run.reason, run.log
    assert "2 kernel parameter(s) set back to their earlier values" in run.log
    assert file_on(lab) == before_file and kernel(lab) == before_kernel
