"""The pieces of the apply engine that need no host: reading the engine's state, which
containers must come back after a reboot, results as JSON, and an empty plan."""

from __future__ import annotations

import asyncio
import json

from hosts import ssh
from hosts.patches import apply, reboot
from hosts.patches.plan import HostPatchPlan, Selection, Transition
from tests.patches.repos import nevra


def test_the_engine_state_as_the_host_prints_it() -> None:
    state = reboot.parse_engine("active\naaa always /web\nbbb no /batch\nccc unless-stopped /db\n")
    assert state.active
    assert state.running == {
        "aaa": ("always", "web"),
        "bbb": ("no", "batch"),
        "ccc": ("unless-stopped", "db"),
    }
    assert reboot.parse_engine("inactive\n") == reboot.EngineState(False, {})
    assert reboot.parse_engine("") == reboot.EngineState(False, {})


def test_containers_with_a_restart_policy_must_come_back() -> None:
    before = reboot.parse_engine("active\naaa always /web\nbbb no /batch\nccc unless-stopped /db\n")
    assert before.missing_after(reboot.parse_engine("active\naaa always /web\n")) == (["db"], ["batch"])
    assert before.missing_after(before) == ([], [])


def test_a_result_round_trips_through_json() -> None:
    result = apply.ApplyResult(
        host="photon-01",
        state=apply.ROLLED_BACK,
        steps=[apply.Step("update", False, "dnf exited with 1", command="dnf -y update x", exit_status=1)],
        tool="dnf",
        before=(nevra("x-1-1"),),
        after=(nevra("x-1-1"),),
        rebooted=False,
    )
    assert apply.ApplyResult.from_json(json.loads(json.dumps(result.to_json()))) == result
    assert not result.ok


def test_an_empty_plan_contacts_no_host() -> None:
    access = ssh.Access("nowhere", "", 22, "root", "", "")
    plan = HostPatchPlan(Selection("security"), ())
    result = asyncio.run(apply.apply_host(access, plan))
    assert result.state == apply.NOTHING and result.ok
    assert [s.name for s in result.steps] == ["plan"]


def test_an_unreachable_host_fails_before_any_change() -> None:
    access = ssh.Access("nowhere", "", 22, "root", "", "")
    plan = HostPatchPlan(Selection("all"), (Transition(nevra("x-1-1"), nevra("x-1-2")),))
    result = asyncio.run(apply.apply_host(access, plan))
    assert result.state == "failed: nowhere has no SSH address"
    assert [(s.name, s.detail) for s in result.steps] == [
        ("connection", "nowhere has no SSH address (before any change)")
    ]
