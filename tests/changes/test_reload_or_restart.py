"""Reload or restart, chosen from a plan's diff: what the person approving sees, and what
applying does to each service. Pure: no host, no database."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hosts.changes.files import daemon_json, firewall, sshd
from hosts.changes.render import restarts_for, with_restart
from hosts.templatetags.change_tags import service_actions
from tests.lab import photon_hosts

PHOTON_SSHD = photon_hosts._sshd_config()
DAEMON_JSON = json.dumps({"cgroup-parent": "/lab", "insecure-registries": ["10.0.0.5:5000"]}, indent=2) + "\n"


def entry(
    path: str, before: str, after: str, *, existed: bool = True, remove: bool = False
) -> dict[str, Any]:
    return {
        "path": path,
        "existed": existed,
        "remove": remove,
        "before": before,
        "after": after,
        "before_sha": str(hash(before)),
        "after_sha": str(hash(after)),
    }


def sshd_entry(desired: dict[str, Any], current: str = PHOTON_SSHD) -> dict[str, Any]:
    return entry(sshd.PATH, current, sshd.render(current, desired))


def daemon_entry(desired: dict[str, Any], current: str = DAEMON_JSON) -> dict[str, Any]:
    return entry(daemon_json.PATH, current, daemon_json.render(current, desired))


@pytest.mark.parametrize(
    "desired",
    [
        {"MaxAuthTries": 3},
        {"AllowUsers": "root ops", "PasswordAuthentication": "no"},
        {"Banner": "/etc/issue.net", "ClientAliveInterval": 60},
    ],
)
def test_an_sshd_change_that_keeps_the_listener_reloads(desired: dict[str, Any]) -> None:
    assert restarts_for([sshd_entry(desired)], docker_running=False) == ["reload sshd"]


def test_an_sshd_port_change_restarts() -> None:
    assert restarts_for([sshd_entry({"Port": 2222, "MaxAuthTries": 3})], docker_running=False) == ["sshd"]


@pytest.mark.parametrize("line", ["ListenAddress 0.0.0.0", "AddressFamily inet"])
def test_a_listener_change_made_by_hand_in_the_same_file_restarts(line: str) -> None:
    # The plan's diff is the whole file: a listener line changed since the last apply counts.
    before = f"{line}\n{PHOTON_SSHD}"
    after = sshd.render(PHOTON_SSHD, {"MaxAuthTries": 3})
    assert restarts_for([entry(sshd.PATH, before, after)], docker_running=False) == ["sshd"]


def test_a_directive_inside_a_match_block_is_not_the_listener() -> None:
    before = PHOTON_SSHD + "Match User ops\n    AllowTcpForwarding no\n"
    after = before.replace("AllowTcpForwarding no", "AllowTcpForwarding yes")
    assert restarts_for([entry(sshd.PATH, before, after)], docker_running=False) == ["reload sshd"]


@pytest.mark.parametrize(
    "desired",
    [
        {"insecure-registries": ["10.0.0.6:5000"]},
        {"registry-mirrors": ["https://mirror.example:5000"]},
        {"live-restore": True},
    ],
)
def test_a_daemon_json_change_dockerd_reloads_is_a_reload(desired: dict[str, Any]) -> None:
    assert restarts_for([daemon_entry(desired)], docker_running=True) == ["reload docker"]


@pytest.mark.parametrize("desired", [{"log-driver": "local"}, {"log-opts": {"max-size": "10m"}}])
def test_a_daemon_json_option_outside_the_reloadable_set_restarts(desired: dict[str, Any]) -> None:
    assert restarts_for([daemon_entry(desired)], docker_running=True) == ["docker"]


def test_a_reloadable_option_with_one_that_is_not_restarts() -> None:
    changed = daemon_entry({"live-restore": True, "log-driver": "local"})
    assert restarts_for([changed], docker_running=True) == ["docker"]


def test_a_stopped_dockerd_is_started_not_reloaded() -> None:
    assert restarts_for([daemon_entry({"live-restore": True})], docker_running=False) == ["docker"]


def test_a_removed_daemon_json_restarts() -> None:
    removed = entry(daemon_json.PATH, DAEMON_JSON, "", remove=True)
    assert restarts_for([removed], docker_running=True) == ["docker"]


def test_a_firewall_change_still_restarts_docker_when_daemon_json_only_needs_a_reload() -> None:
    ip4save = (photon_hosts.REFERENCE / "iptables_ip4save").read_text()
    rules = entry(firewall.PATH, ip4save, firewall.render(ip4save, {"open": ["tcp/8080"]}))
    entries = [sshd_entry({"MaxAuthTries": 3}), daemon_entry({"live-restore": True}), rules]
    assert restarts_for(entries, docker_running=True) == ["iptables", "docker", "reload sshd"]


def test_with_restart_turns_a_reload_into_a_restart_in_order() -> None:
    assert with_restart(["reload docker", "reload sshd"], "docker") == ["docker", "reload sshd"]
    assert with_restart(["iptables", "reload sshd"], "docker") == ["iptables", "docker", "reload sshd"]


def test_the_plan_says_which_will_happen() -> None:
    actions = service_actions(["sysctl", "reload docker", "sshd"])
    assert actions == ["applies sysctl", "reloads docker", "restarts sshd"]


def test_a_reload_dockerd_refused_shows_in_its_info() -> None:
    config = json.dumps(
        {"live-restore": True, "registry-mirrors": ["https://m.example"], "insecure-registries": ["r:5000"]}
    )
    took = {
        "LiveRestoreEnabled": True,
        "RegistryConfig": {
            "Mirrors": ["https://m.example/"],
            "IndexConfigs": {"r:5000": {"Secure": False}, "docker.io": {"Secure": True}},
            "InsecureRegistryCIDRs": ["127.0.0.0/8"],
        },
    }
    assert daemon_json.reload_problems(config, took) == []
    kept_old = {"LiveRestoreEnabled": False, "RegistryConfig": {"InsecureRegistryCIDRs": ["127.0.0.0/8"]}}
    problems = daemon_json.reload_problems(config, kept_old)
    assert len(problems) == 3 and "live-restore" in problems[0] and "r:5000" in problems[2]
    cidr = json.dumps({"insecure-registries": ["10.1.0.0/16"]})
    assert (
        daemon_json.reload_problems(cidr, {"RegistryConfig": {"InsecureRegistryCIDRs": ["10.1.0.0/16"]}})
        == []
    )


@pytest.mark.parametrize(
    ("verb", "said", "status", "refused"),
    [
        ("reload", "Job for sshd.service failed.", 1, "sshd did not reload: Job for sshd.service failed."),
        ("restart", "Job for sshd.service failed.", 1, "sshd did not restart: Job for sshd.service failed."),
        ("restart", "--portal-systemctl-done--\nfailed", 3, "sshd is not running after the restart"),
        ("restart", "--portal-systemctl-done--\nactive", 0, None),
        ("reload", "", 0, None),
    ],
)
def test_one_command_says_whether_the_service_took_the_verb_and_still_runs(
    monkeypatch: pytest.MonkeyPatch, verb: str, said: str, status: int, refused: str | None
) -> None:
    """A restart and ``is-active`` share one SSH channel, told apart by a marker; a reload is
    one ``systemctl reload`` (what it took is verified after: a new login, dockerd's info).
    The lab tests run the real thing: test_push_sshd_reload."""
    import asyncio
    from types import SimpleNamespace

    from hosts.changes import apply
    from hosts.changes.errors import StepFailed

    sent: list[str] = []

    async def run(conn: Any, command: str, *, timeout: float) -> Any:
        sent.append(command)
        return SimpleNamespace(stdout=said, stderr="", exit_status=status)

    async def report(*args: Any) -> None:
        return None

    monkeypatch.setattr(apply.ssh, "run", run)
    call = (
        apply._reload(None, "sshd", report, progress=65)
        if verb == "reload"
        else apply._restarted(None, "sshd", timeout=5)
    )
    if refused is None:
        asyncio.run(call)
    else:
        with pytest.raises(StepFailed) as failed:
            asyncio.run(call)
        assert refused in str(failed.value)
    done = "echo --portal-systemctl-done--"
    expected = (
        "systemctl reload sshd 2>&1"
        if verb == "reload"
        else f"systemctl restart sshd 2>&1 && {done} && systemctl is-active sshd"
    )
    assert sent == [expected]


@pytest.mark.parametrize(
    ("settings", "asks_docker"),
    [
        ({"sshd": {"MaxAuthTries": 3}}, False),
        ({"sysctl": {"vm.swappiness": 10}}, False),
        ({"firewall": {"open": ["tcp/8080"]}}, True),
        ({"daemon_json": {"live-restore": True}}, True),
        ({"docker_api": {"tls": True}}, True),
    ],
)
def test_planning_asks_whether_dockerd_runs_only_where_the_plan_depends_on_it(
    settings: dict[str, Any], asks_docker: bool
) -> None:
    """The user's groups are always read (the AllowGroups lock-out guard); dockerd's state
    only for settings whose restarts or refusals depend on it."""
    from hosts import ssh
    from hosts.changes import planning

    item = planning._PlanInput(1, ssh.Access("h1", "10.0.0.1", 22, "ops; rm -rf /", "k", "hk"), settings)
    command = planning.facts_command(item)
    assert command.startswith("id -Gn 'ops; rm -rf /' 2>/dev/null; echo")
    assert ("systemctl is-active docker" in command) is asks_docker
