"""The command lines a patch run sends: exact NEVRAs, the tool the host has, and names from a
repository that cannot inject shell (run here under a real sh, with a stub tool)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path

import pytest

from hosts.patches import commands
from hosts.patches.plan import HostPatchPlan, Selection, Transition
from hosts.patches.records import Nevra


def _plan(*targets: Nevra) -> HostPatchPlan:
    return HostPatchPlan(
        selection=Selection("all"),
        transitions=tuple(Transition(Nevra(t.name, t.epoch, "0", "0", t.arch), t) for t in targets),
    )


LIB = Nevra("photon-demo-lib", 1, "1.1", "1.ph5", "x86_64")
TOOLS = Nevra("photon-demo-tools", 0, "2.3", "2.ph5", "noarch")


def test_tdnf_updates_the_exact_builds() -> None:
    assert commands.command_for(_plan(LIB, TOOLS), "tdnf", "5.0") == (
        "LC_ALL=C tdnf -y --releasever=5.0 update photon-demo-lib-1:1.1-1.ph5.x86_64 "
        "photon-demo-tools-2.3-2.ph5.noarch"
    )


def test_dnf_gets_the_same_arguments_and_behaves_as_tdnf() -> None:
    assert commands.command_for(_plan(LIB), "dnf", "5.0") == (
        "LC_ALL=C dnf -y --releasever=5.0 --setopt=install_weak_deps=False --noplugins "
        "update photon-demo-lib-1:1.1-1.ph5.x86_64"
    )


def test_rollback_commands_name_the_recorded_builds() -> None:
    old = Nevra("photon-demo-tools", 0, "2.3", "1.ph5", "noarch")
    assert commands.downgrade_command("tdnf", "", [old]) == (
        "LC_ALL=C tdnf -y downgrade photon-demo-tools-2.3-1.ph5.noarch"
    )
    assert commands.install_command("dnf", "5.0", [old]).endswith(
        " install photon-demo-tools-2.3-1.ph5.noarch"
    )
    assert commands.remove_command("dnf", "5.0", [old]).endswith(" remove photon-demo-tools-2.3-1.ph5.noarch")


@pytest.mark.parametrize(
    ("printed", "tool"), [("/usr/bin/tdnf\n", "tdnf"), ("/usr/bin/dnf", "dnf"), ("/bin/tdnf", "tdnf")]
)
def test_the_tool_is_what_the_host_has(printed: str, tool: str) -> None:
    assert commands.tool_from_path(printed) == tool


@pytest.mark.parametrize("printed", ["", "/usr/bin/yum", "/usr/bin/apt"])
def test_neither_tool_is_an_error(printed: str) -> None:
    with pytest.raises(commands.CommandError, match="neither tdnf nor dnf"):
        commands.tool_from_path(printed)


def test_the_detection_prefers_tdnf(tmp_path: Path) -> None:
    for tool in ("dnf", "tdnf"):
        (tmp_path / tool).write_text("#!/bin/sh\n")
        (tmp_path / tool).chmod(0o755)
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin"}
    said = subprocess.run(["sh", "-c", commands.DETECT], capture_output=True, text=True, env=env).stdout
    assert commands.tool_from_path(said) == "tdnf"
    (tmp_path / "tdnf").unlink()
    said = subprocess.run(["sh", "-c", commands.DETECT], capture_output=True, text=True, env=env).stdout
    assert commands.tool_from_path(said) == "dnf"


HOSTILE = [
    "x;touch PWNED",
    "x$(touch PWNED)",
    "x`touch PWNED`",
    "x' ; touch PWNED ; '",
    'x" && touch PWNED && "',
    "x|touch PWNED",
    "x&&touch PWNED",
    "x>PWNED",
    "x *",
]


@pytest.mark.parametrize("name", HOSTILE)
def test_a_hostile_name_from_a_repository_stays_one_argument(tmp_path: Path, name: str) -> None:
    """The command runs under sh, as over SSH; the stub tdnf records its argv: the hostile name
    arrives as one word, and nothing else ran."""
    stub = tmp_path / "bin" / "tdnf"
    stub.parent.mkdir()
    stub.write_text("#!/usr/bin/env python3\nimport json, sys\nprint(json.dumps(sys.argv[1:]))\n")
    stub.chmod(0o755)
    work = tmp_path / "cwd"
    work.mkdir()
    hostile = Nevra(name, 0, "1.0", "1.ph5", "x86_64")
    line = commands.command_for(_plan(hostile, TOOLS), "tdnf", "5.0")
    said = subprocess.run(
        ["sh", "-c", line],
        capture_output=True,
        text=True,
        cwd=work,
        env={**os.environ, "PATH": f"{stub.parent}:{os.environ['PATH']}"},
        check=True,
    ).stdout
    assert json.loads(said) == [
        "-y",
        "--releasever=5.0",
        "update",
        f"{name}-1.0-1.ph5.x86_64",
        "photon-demo-tools-2.3-2.ph5.noarch",
    ]
    assert list(work.iterdir()) == []
    assert shlex.split(line)[5] == f"{name}-1.0-1.ph5.x86_64"


@pytest.mark.parametrize("name", ["--installroot=/tmp/x", "-y", "x\nreboot", "x\x00y"])
def test_a_name_that_could_be_an_option_or_a_second_line_is_refused(name: str) -> None:
    with pytest.raises(commands.CommandError, match="refusing the package name"):
        commands.command_for(_plan(Nevra(name, 0, "1", "1", "noarch")), "tdnf", "5.0")


def test_an_empty_plan_or_an_unknown_tool_builds_nothing() -> None:
    with pytest.raises(commands.CommandError, match="nothing to update"):
        commands.command_for(_plan(), "tdnf")
    with pytest.raises(commands.CommandError, match="unknown package tool"):
        commands.command_for(_plan(LIB), "yum")


def test_a_hostile_releasever_is_quoted_too() -> None:
    line = commands.command_for(_plan(LIB), "tdnf", "5.0; reboot")
    assert shlex.split(line)[3] == "--releasever=5.0; reboot"
