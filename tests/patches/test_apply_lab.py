"""The apply engine on the lab's Photon-like hosts (dnf as tdnf's stand-in, each host with its
own RPM database): the security advisory moves exactly its packages, a %post that fails is
rolled back to the recorded build, a kernel-like update reboots the host, waits for it and
verifies it. Every test leaves the host's packages as it found them (the hosts are shared)."""

from __future__ import annotations

import asyncio
import shlex
from pathlib import Path
from typing import Any

import pytest

from hosts import ssh
from hosts.patches import apply, installed, repodata
from hosts.patches.plan import HostPatchPlan, Selection, plan_host
from hosts.patches.records import Nevra
from tests.lab import images
from tests.lab.common import wait_until
from tests.patches.lab_packages import LabHost, access, rpm, sh

pytestmark = pytest.mark.lab


def _plan(lab: LabHost, selection: Selection) -> HostPatchPlan:
    async def read() -> installed.HostPackages:
        async with ssh.connect(access(lab)) as conn:
            return await installed.read_host(conn)

    host = asyncio.run(read())
    repos = [repodata.fetch_repository(url) for url in installed.enabled_urls(host)]
    return plan_host(host.installed, repos, selection, host=str(lab["name"]))


def _apply(lab: LabHost, plan: HostPatchPlan, **kwargs: Any) -> tuple[apply.ApplyResult, list[apply.Step]]:
    streamed: list[apply.Step] = []

    async def progress(step: apply.Step) -> None:
        streamed.append(step)

    result = asyncio.run(apply.apply_host(access(lab), plan, progress=progress, **kwargs))
    assert streamed == result.steps
    return result, streamed


def _changed(before: set[Nevra], after: set[Nevra]) -> set[str]:
    return {str(p) for p in after - before}


def test_the_security_advisory_moves_exactly_its_packages(
    lab_rpm: dict[str, Any], lab_hosts: list[LabHost], restored: Any
) -> None:
    lab = lab_hosts[0]
    before = restored(lab)
    plan = _plan(lab, Selection("security"))
    assert {str(t.target) for t in plan.transitions} == {
        "photon-demo-lib-1:1.1-1.ph5.x86_64",
        "linux-demo-6.1.11-1.ph5.x86_64",
    }
    assert {t.advisories for t in plan.transitions} == {(lab_rpm["security_advisory"],)}
    result, _ = _apply(lab, plan)
    assert result.state == apply.APPLIED, result.steps
    after = rpm(lab)
    assert _changed(before, after) == {str(t.target) for t in plan.transitions}
    assert {str(p) for p in before - after} == {str(t.installed) for t in plan.transitions}
    # The bugfix update of photon-demo-tools is available and was left alone.
    assert Nevra("photon-demo-tools", 0, "2.3", "1.ph5", "noarch") in after
    (update,) = [s for s in result.steps if s.name == "update"]
    assert update.exit_status == 0 and update.command.startswith("LC_ALL=C dnf -y --releasever=5.0 ")
    assert result.tool == "dnf" and result.rebooted
    assert set(result.after) == after


def test_a_failing_post_scriptlet_is_rolled_back_to_the_recorded_build(
    lab_rpm: dict[str, Any], lab_hosts: list[LabHost], restored: Any
) -> None:
    lab = lab_hosts[1]
    before = restored(lab)
    plan = _plan(lab, Selection("advisories", (lab_rpm["bugfix_advisory"],)))
    assert [str(t.target) for t in plan.transitions] == ["photon-demo-tools-2.3-2.ph5.noarch"]
    assert not plan.reboot
    status, said = sh(lab, f"touch {shlex.quote(lab_rpm['fail_post'])}")
    assert status == 0, said
    result, _ = _apply(lab, plan)
    assert result.state == apply.ROLLED_BACK, result.steps
    names = [s.name for s in result.steps]
    assert names == ["detect", "record", "update", "rollback: downgrade", "verify rollback"]
    update = result.steps[2]
    # dnf (like rpm and tdnf) exits 0 for a failed %post; librpm's warning says it.
    assert not update.ok and update.exit_status == 0
    assert "the %post scriptlet of photon-demo-tools-2.3-2.ph5.noarch failed" in update.detail
    assert (
        result.steps[3].exit_status == 0 and "photon-demo-tools-2.3-1.ph5.noarch" in result.steps[3].command
    )
    assert rpm(lab) == before
    assert Nevra("photon-demo-tools", 0, "2.3", "1.ph5", "noarch") in before


def test_without_the_marker_the_same_plan_applies(
    lab_rpm: dict[str, Any], lab_hosts: list[LabHost], restored: Any
) -> None:
    """The rollback above is the scriptlet's doing, not the plan's."""
    lab = lab_hosts[1]
    before = restored(lab)
    plan = _plan(lab, Selection("advisories", (lab_rpm["bugfix_advisory"],)))
    result, _ = _apply(lab, plan)
    assert result.state == apply.APPLIED, result.steps
    assert _changed(before, rpm(lab)) == {"photon-demo-tools-2.3-2.ph5.noarch"}
    assert not result.rebooted


def test_a_plan_made_for_other_versions_is_refused_and_nothing_runs(
    lab_rpm: dict[str, Any], lab_hosts: list[LabHost], restored: Any
) -> None:
    # Planned on the first host (photon-demo-lib 1.0), applied to the second (it has 1.1).
    plan = _plan(
        lab_hosts[0], Selection("advisories", (lab_rpm["security_advisory"],), exclude=("linux-demo",))
    )
    before = restored(lab_hosts[1])
    result, _ = _apply(lab_hosts[1], plan)
    assert result.state == "failed: the host changed since the plan was made; nothing was run"
    assert [s.name for s in result.steps] == ["detect", "record"]
    assert rpm(lab_hosts[1]) == before


def _start_containers(lab: LabHost) -> str:
    """Two busybox containers on the host's engine: one that comes back by itself (restart
    policy always), one that does not (no policy). Returns the image reference. ``sleep`` as PID 1
    ignores SIGTERM: a one-second stop timeout keeps the reboot from waiting docker's ten."""
    archive = images.build()

    async def load() -> None:
        async with ssh.connect(access(lab)) as conn, ssh.sftp_client(conn) as sftp:
            await sftp.put(str(archive.path), "/tmp/lab-images.tar")

    asyncio.run(load())
    ref = archive.busybox_ref
    status, said = sh(
        lab,
        "docker load -i /tmp/lab-images.tar >/dev/null && rm /tmp/lab-images.tar && "
        f"docker run -d --restart=always --stop-timeout=1 --name patch-comes-back {ref} sleep 36000 && "
        f"docker run -d --stop-timeout=1 --name patch-no-policy {ref} sleep 36000",
    )
    assert status == 0, said
    return ref


def test_a_kernel_like_update_reboots_waits_and_verifies(
    lab_rpm: dict[str, Any], lab_hosts: list[LabHost], restored: Any
) -> None:
    lab = lab_hosts[0]
    assert lab["full"], "the first lab host runs dockerd"
    before = restored(lab)
    _start_containers(lab)
    try:
        plan = _plan(lab, Selection("all", exclude=("photon-demo-*",)))
        assert [str(t.target) for t in plan.transitions] == ["linux-demo-6.1.11-1.ph5.x86_64"]
        assert plan.reboot_reasons == (f"linux-demo: {lab_rpm['security_advisory']} suggests a reboot",)
        status, boot_before = sh(lab, "cat /run/sshd.pid")
        assert status == 0
        result, _ = _apply(lab, plan, reboot_timeout=120)
        assert result.state == apply.APPLIED, result.steps
        assert [s.name for s in result.steps] == [
            "detect",
            "record",
            "update",
            "reboot",
            "wait",
            "engine",
            "verify",
        ]
        assert all(s.ok for s in result.steps), result.steps
        assert result.rebooted
        engine = result.steps[5].detail
        assert engine.startswith("the Docker engine runs and its containers run again")
        assert "no restart policy: patch-no-policy" in engine
        # It really went down and came back: a new sshd, the container restarted by dockerd.
        status, boot_after = sh(lab, "cat /run/sshd.pid")
        assert status == 0 and boot_after != boot_before
        status, running = sh(lab, "docker ps --format '{{.Names}}'")
        assert running.split() == ["patch-comes-back"]
        assert _changed(before, rpm(lab)) == {"linux-demo-6.1.11-1.ph5.x86_64"}
    finally:
        sh(lab, "docker rm -f patch-comes-back patch-no-policy >/dev/null 2>&1; true")


def test_a_host_without_an_engine_reboots_and_verifies_its_packages(
    lab_rpm: dict[str, Any], lab_hosts: list[LabHost], restored: Any
) -> None:
    """The second host has no dockerd, and photon-demo-lib already updated: its security plan is
    linux-demo alone, and coming back means SSH answering on a restarted host."""
    lab = lab_hosts[1]
    assert not lab["full"]
    before = restored(lab)
    plan = _plan(lab, Selection("security"))
    assert [str(t.target) for t in plan.transitions] == ["linux-demo-6.1.11-1.ph5.x86_64"]
    status, sshd_before = sh(lab, "cat /run/sshd.pid")
    assert status == 0
    result, _ = _apply(lab, plan, reboot_timeout=120)
    assert result.state == apply.APPLIED, result.steps
    assert [s.name for s in result.steps] == ["detect", "record", "update", "reboot", "wait", "verify"]
    status, sshd_after = sh(lab, "cat /run/sshd.pid")
    assert status == 0 and sshd_after != sshd_before
    assert _changed(before, rpm(lab)) == {"linux-demo-6.1.11-1.ph5.x86_64"}


def test_a_host_that_does_not_come_back_fails_saying_so_and_is_left_for_a_person(
    lab_rpm: dict[str, Any], lab_hosts: list[LabHost], restored: Any
) -> None:
    """The kernel-like update reboots the host, which stays down past the wait: the run fails
    with the reason (no rollback is possible on a host nobody reaches), and nothing hangs."""
    lab = lab_hosts[1]
    before = restored(lab)
    plan = _plan(lab, Selection("security"))
    held = Path(str(lab["dir"])) / "stay-down"
    held.touch()
    try:
        result, _ = _apply(lab, plan, reboot_timeout=6)
    finally:
        held.unlink()
    assert result.state.startswith("failed: ") and "did not come back within 6s" in result.state
    assert [(s.name, s.ok) for s in result.steps] == [
        ("detect", True),
        ("record", True),
        ("update", True),
        ("reboot", True),
        ("wait", False),
    ]
    assert result.rebooted
    # Released, it boots into the update; the restored fixture puts the recorded build back.
    wait_until(lambda: sh(lab, "true")[0] == 0, timeout=60, what="the host to come back")
    assert _changed(before, rpm(lab)) == {"linux-demo-6.1.11-1.ph5.x86_64"}
