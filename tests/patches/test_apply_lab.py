"""The apply engine on the lab's Photon-like hosts (dnf as tdnf's stand-in, each host with its
own RPM database): the security advisory moves exactly its packages, a %post that fails is
rolled back to the recorded build, a kernel-like update reboots the host, waits for it and
verifies it. Every test leaves the host's packages as it found them (the hosts are shared)."""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hosts import ssh
from hosts.patches import apply, installed, repodata, verify
from hosts.patches.plan import HostPatchPlan, Selection, plan_host
from hosts.patches.records import Nevra
from tests.lab import images, rpm_repos

pytestmark = pytest.mark.lab

LabHost = dict[str, Any]


def _access(lab: LabHost) -> ssh.Access:
    key = Path(str(lab["private_key"])).read_text()
    return ssh.Access(
        str(lab["name"]), str(lab["address"]), int(lab["port"]), "root", key, str(lab["host_key"])
    )


async def _sh(lab: LabHost, command: str, timeout: float = 300) -> tuple[int, str]:
    async with ssh.connect(_access(lab)) as conn:
        result = await ssh.run(conn, command, timeout=timeout)
        return int(result.exit_status or 0), ssh.output(result)


def _rpm(lab: LabHost) -> set[Nevra]:
    async def read() -> set[Nevra]:
        async with ssh.connect(_access(lab)) as conn:
            return set((await installed.read_host(conn)).installed)

    return asyncio.run(read())


def _plan(lab: LabHost, selection: Selection) -> HostPatchPlan:
    async def read() -> installed.HostPackages:
        async with ssh.connect(_access(lab)) as conn:
            return await installed.read_host(conn)

    host = asyncio.run(read())
    repos = [repodata.fetch_repository(url) for url in installed.enabled_urls(host)]
    return plan_host(host.installed, repos, selection, host=str(lab["name"]))


def _apply(lab: LabHost, plan: HostPatchPlan, **kwargs: Any) -> tuple[apply.ApplyResult, list[apply.Step]]:
    streamed: list[apply.Step] = []

    async def progress(step: apply.Step) -> None:
        streamed.append(step)

    result = asyncio.run(apply.apply_host(_access(lab), plan, progress=progress, **kwargs))
    assert streamed == result.steps
    return result, streamed


@pytest.fixture
def restored(lab_rpm: dict[str, Any]) -> Iterator[Any]:
    """Yields a function that registers a host; after the test its packages are put back as they
    were when registered (with dnf, not with the code under test) and the fail-post marker goes."""
    recorded: list[tuple[LabHost, set[Nevra]]] = []

    def register(lab: LabHost) -> set[Nevra]:
        before = _rpm(lab)
        recorded.append((lab, before))
        return before

    yield register
    for lab, before in recorded:
        asyncio.run(_sh(lab, f"rm -f {shlex.quote(lab_rpm['fail_post'])}"))
        put_back = verify.restore(before, _rpm(lab))
        for verb, packages in (
            ("downgrade", put_back.downgrade),
            ("install", put_back.install),
            ("remove", put_back.remove),
        ):
            if packages:
                status, said = asyncio.run(_sh(lab, rpm_repos.dnf_command(verb, *map(str, packages))))
                assert status == 0, said
        assert _rpm(lab) == before


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
    after = _rpm(lab)
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
    status, said = asyncio.run(_sh(lab, f"touch {shlex.quote(lab_rpm['fail_post'])}"))
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
    assert _rpm(lab) == before
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
    assert _changed(before, _rpm(lab)) == {"photon-demo-tools-2.3-2.ph5.noarch"}
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
    assert _rpm(lab_hosts[1]) == before


def _start_containers(lab: LabHost) -> str:
    """Two busybox containers on the host's engine: one that comes back by itself (restart
    policy always), one that does not (no policy). Returns the image reference. ``sleep`` as PID 1
    ignores SIGTERM: a one-second stop timeout keeps the reboot from waiting docker's ten."""
    archive = images.build()

    async def load() -> None:
        async with ssh.connect(_access(lab)) as conn, ssh.sftp_client(conn) as sftp:
            await sftp.put(str(archive.path), "/tmp/lab-images.tar")

    asyncio.run(load())
    ref = archive.busybox_ref
    status, said = asyncio.run(
        _sh(
            lab,
            "docker load -i /tmp/lab-images.tar >/dev/null && rm /tmp/lab-images.tar && "
            f"docker run -d --restart=always --stop-timeout=1 --name patch-comes-back {ref} sleep 36000 && "
            f"docker run -d --stop-timeout=1 --name patch-no-policy {ref} sleep 36000",
        )
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
        status, boot_before = asyncio.run(_sh(lab, "cat /run/sshd.pid"))
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
        status, boot_after = asyncio.run(_sh(lab, "cat /run/sshd.pid"))
        assert status == 0 and boot_after != boot_before
        status, running = asyncio.run(_sh(lab, "docker ps --format '{{.Names}}'"))
        assert running.split() == ["patch-comes-back"]
        assert _changed(before, _rpm(lab)) == {"linux-demo-6.1.11-1.ph5.x86_64"}
    finally:
        asyncio.run(_sh(lab, "docker rm -f patch-comes-back patch-no-policy >/dev/null 2>&1; true"))


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
    status, sshd_before = asyncio.run(_sh(lab, "cat /run/sshd.pid"))
    assert status == 0
    result, _ = _apply(lab, plan, reboot_timeout=120)
    assert result.state == apply.APPLIED, result.steps
    assert [s.name for s in result.steps] == ["detect", "record", "update", "reboot", "wait", "verify"]
    status, sshd_after = asyncio.run(_sh(lab, "cat /run/sshd.pid"))
    assert status == 0 and sshd_after != sshd_before
    assert _changed(before, _rpm(lab)) == {"linux-demo-6.1.11-1.ph5.x86_64"}
