"""The renderers: current file text + desired settings -> new text, keeping what they don't own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hosts.changes.files import SettingsError, daemon_json, docker, firewall, sshd, sysctl
from tests.lab import photon_hosts

REFERENCE = photon_hosts.REFERENCE
PHOTON_SSHD = photon_hosts._sshd_config()
PHOTON_IP4SAVE = (REFERENCE / "iptables_ip4save").read_text()
PHOTON_DOCKER_UNIT = (REFERENCE / "docker_docker-post19.service").read_text()

WITH_MATCH = """\
# header comment
Port 22
PermitRootLogin yes
# Authentication
#PasswordAuthentication yes
Subsystem sftp /usr/libexec/sftp-server

# Admins may use passwords from the office
Match Address 10.0.0.0/8
    PasswordAuthentication yes
    PermitRootLogin no
"""


def changed_lines(before: str, after: str) -> tuple[list[str], list[str]]:
    old, new = before.splitlines(), after.splitlines()
    return [line for line in old if line not in new], [line for line in new if line not in old]


def test_sshd_changes_only_what_it_owns_in_photons_file() -> None:
    after = sshd.render(PHOTON_SSHD, {"PermitRootLogin": "prohibit-password", "PasswordAuthentication": "no"})
    assert after == PHOTON_SSHD  # already so: byte for byte the same
    after = sshd.render(PHOTON_SSHD, {"MaxAuthTries": 3, "ClientAliveInterval": 300, "Banner": "/etc/issue"})
    removed, added = changed_lines(PHOTON_SSHD, after)
    assert removed == ["MaxAuthTries 4"]
    assert added == ["MaxAuthTries 3", "ClientAliveInterval 300", "Banner /etc/issue"]
    lines = after.splitlines()
    # A new directive sits right under its commented default, where a reader looks for it.
    assert lines[lines.index("ClientAliveInterval 300") - 1] == "#ClientAliveInterval 0"
    assert lines[lines.index("Banner /etc/issue") - 1] == "#Banner none"
    assert sshd.effective(after)["MaxAuthTries"] == "3"


def test_sshd_global_directives_go_before_the_first_match_block() -> None:
    after = sshd.render(WITH_MATCH, {"PasswordAuthentication": False, "AllowUsers": ["root", "ops"]})
    lines = after.splitlines()
    match = lines.index("Match Address 10.0.0.0/8")
    assert lines.index("PasswordAuthentication no") < match
    assert lines[lines.index("PasswordAuthentication no") - 1] == "#PasswordAuthentication yes"
    assert lines.index("AllowUsers root ops") < match
    # The Match block and its comment are untouched, in order, at the end.
    assert lines[match - 1] == "# Admins may use passwords from the office"
    assert lines[match:] == WITH_MATCH.splitlines()[-3:]
    assert "    PasswordAuthentication yes" in lines
    assert sshd.effective(after)["PasswordAuthentication"] == "no"


def test_sshd_changes_a_set_directive_in_place_and_drops_global_duplicates() -> None:
    text = "Port 22\nPermitRootLogin yes\nX11Forwarding no\nPermitRootLogin no\n"
    after = sshd.render(text, {"PermitRootLogin": "prohibit-password", "Port": 2222})
    assert after == "Port 2222\nPermitRootLogin prohibit-password\nX11Forwarding no\n"


def test_sshd_keeps_include_and_puts_managed_directives_before_it() -> None:
    text = "# Debian style\nInclude /etc/ssh/sshd_config.d/*.conf\n\nPasswordAuthentication yes\nUsePAM yes\n"
    after = sshd.render(text, {"PasswordAuthentication": "no", "MaxAuthTries": 5})
    lines = after.splitlines()
    include = lines.index("Include /etc/ssh/sshd_config.d/*.conf")
    # An included file read first would win, so ours come before the Include.
    assert lines.index("PasswordAuthentication no") < include
    assert lines.index("MaxAuthTries 5") < include
    assert "PasswordAuthentication yes" not in lines
    assert "UsePAM yes" in lines and lines[0] == "# Debian style"


def test_sshd_without_a_trailing_newline_keeps_it_that_way() -> None:
    assert sshd.render("Port 22", {"Port": 23}) == "Port 23"


@pytest.mark.parametrize(
    ("desired", "message"),
    [
        ({"PermitRootLogin": "maybe"}, "PermitRootLogin must be one of"),
        ({"Port": 70000}, "between 1 and 65535"),
        ({"Port": "twenty"}, "whole number"),
        ({"AllowUsers": "root\nPermitRootLogin yes"}, "line breaks"),
        ({"AllowUsers": "root,ops"}, "not a user or group name"),
        ({"Banner": "/etc/issue\nPort 1"}, "line breaks"),
        ({"Banner": "etc/issue"}, "absolute file path"),
        ({"UsePAM": "no"}, "does not manage"),
        ({"PasswordAuthentication": "perhaps"}, "yes or no"),
    ],
)
def test_sshd_refuses_invalid_values_with_a_clear_message(desired: dict[str, object], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        sshd.render(PHOTON_SSHD, desired)


def test_docker_drop_in_resets_exec_start_and_keeps_the_units_own_options() -> None:
    text = docker.render("", {"enabled": True}, unit_text=PHOTON_DOCKER_UNIT)
    lines = text.splitlines()
    assert "[Service]" in lines
    start = lines.index("ExecStart=")
    command = lines[start + 1]
    assert command.startswith(
        "ExecStart=/usr/bin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock"
    )
    assert "-H tcp://0.0.0.0:2376 --tlsverify" in command
    assert f"--tlscacert={docker.CA} --tlscert={docker.CERT} --tlskey={docker.KEY}" in command
    assert "2375" not in text


def test_docker_drop_in_is_idempotent_against_a_unit_that_already_listens_on_tcp() -> None:
    unit = (
        "[Service]\nExecStart=/usr/bin/dockerd -H unix:///var/run/docker.sock"
        " -H tcp://0.0.0.0:2375 --tls=false\n"
    )
    text = docker.render("", {"enabled": True}, unit_text=unit)
    command = next(line for line in text.splitlines() if line.startswith("ExecStart=/"))
    assert command.count("-H tcp://") == 1 and "--tls=false" not in command
    assert "-H unix:///var/run/docker.sock" in command


def test_plain_docker_port_only_when_asked_and_flagged() -> None:
    text = docker.render("", {"enabled": True, "insecure": True}, unit_text=PHOTON_DOCKER_UNIT)
    assert "INSECURE" in text and "-H tcp://0.0.0.0:2375 --tls=false" in text and "--tlsverify" not in text
    assert docker.render("old", {"enabled": False}, unit_text=PHOTON_DOCKER_UNIT) == ""
    assert docker.port({"enabled": True}) == 2376


def test_daemon_json_keeps_other_keys_and_refuses_hosts() -> None:
    current = '{\n  "cgroup-parent": "/lab",\n  "log-driver": "json-file"\n}\n'
    after = daemon_json.render(
        current, {"log-driver": "local", "log-opts": {"max-size": "10m"}, "live-restore": True}
    )
    assert json.loads(after) == {
        "cgroup-parent": "/lab",
        "log-driver": "local",
        "log-opts": {"max-size": "10m"},
        "live-restore": True,
    }
    assert next(iter(json.loads(after))) == "cgroup-parent"
    assert daemon_json.render(after, {"log-driver": "local"}) == after
    assert json.loads(daemon_json.render("", {"registry-mirrors": ["https://mirror.example:5000"]})) == {
        "registry-mirrors": ["https://mirror.example:5000"]
    }
    with pytest.raises(SettingsError, match="must not set hosts"):
        daemon_json.render(current, {"hosts": ["tcp://0.0.0.0:2375"]})
    with pytest.raises(SettingsError, match="not valid JSON"):
        daemon_json.render("{broken", {"live-restore": True})
    with pytest.raises(SettingsError, match="not host"):
        daemon_json.render("", {"insecure-registries": ["a b"]})


def test_firewall_opens_after_photons_ssh_rule_and_keeps_the_rest() -> None:
    after = firewall.render(PHOTON_IP4SAVE, {"open": ["tcp/2376", "udp/53"]})
    lines = after.splitlines()
    ssh = lines.index("-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT")
    assert lines[ssh + 1] == "-A INPUT -p tcp -m tcp --dport 2376 -j ACCEPT"
    assert lines[ssh + 2] == "-A INPUT -p udp -m udp --dport 53 -j ACCEPT"
    removed, added = changed_lines(PHOTON_IP4SAVE, after)
    assert removed == [] and len(added) == 2
    assert "#keep commented till upgrade issues are sorted" in lines
    assert firewall.open_ports(after) == {("tcp", 22), ("tcp", 2376), ("udp", 53)}
    # Opening what is open changes nothing; closing restores the original byte for byte.
    assert firewall.render(after, {"open": ["tcp/2376"]}) == after
    assert firewall.render(after, {"closed": ["tcp/2376", "udp/53"]}) == PHOTON_IP4SAVE


def test_firewall_close_removes_only_plain_rules_for_that_port() -> None:
    text = PHOTON_IP4SAVE.replace(
        "-A OUTPUT -j ACCEPT",
        "-A INPUT -p tcp --dport 8080 -j ACCEPT\n"
        "-A INPUT -s 10.0.0.1/32 -p tcp -m tcp --dport 8080 -j ACCEPT\n"
        "-A OUTPUT -j ACCEPT",
    )
    after = firewall.render(text, {"closed": ["tcp/8080"]})
    assert "-A INPUT -p tcp --dport 8080 -j ACCEPT" not in after
    assert "-A INPUT -s 10.0.0.1/32 -p tcp -m tcp --dport 8080 -j ACCEPT" in after


@pytest.mark.parametrize(
    ("desired", "message"),
    [
        ({"open": ["tcp/99999"]}, "not a port"),
        ({"open": ["8080"]}, "not a port"),
        ({"open": ["tcp/80"], "closed": ["tcp/80"]}, "both opened and closed"),
    ],
)
def test_firewall_refuses_invalid_ports(desired: dict[str, object], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        firewall.render(PHOTON_IP4SAVE, desired)


def test_firewall_needs_a_filter_table() -> None:
    with pytest.raises(SettingsError, match="no \\*filter"):
        firewall.render("*nat\nCOMMIT\n", {"open": ["tcp/80"]})


def test_sysctl_sets_keys_in_place_appends_the_rest_and_keeps_everything_else() -> None:
    current = "# tuned by hand\nvm.swappiness=10\n-net.ipv4.ip_forward = 0\nkernel.pid_max = 65536"
    after = sysctl.render(current, {"net.ipv4.ip_forward": 1, "vm.max_map_count": "262144"})
    assert after == (
        "# tuned by hand\nvm.swappiness=10\n-net.ipv4.ip_forward = 1\nkernel.pid_max = 65536\n"
        "vm.max_map_count = 262144\n"
    )
    assert sysctl.render(after, {"vm.max_map_count": "262144"}) == after  # already so: byte for byte
    new = sysctl.render("", {"net.ipv4.ip_local_port_range": "32768   60999"})
    assert new == sysctl.HEADER + "net.ipv4.ip_local_port_range = 32768 60999\n"
    assert sysctl.keys_of(after) == [
        "vm.swappiness",
        "net.ipv4.ip_forward",
        "kernel.pid_max",
        "vm.max_map_count",
    ]
    assert sysctl.proc_path("net.ipv4.ip_forward") == "/proc/sys/net/ipv4/ip_forward"


@pytest.mark.parametrize(
    ("desired", "message"),
    [
        ({"swappiness": "10"}, "not a kernel parameter name"),
        ({"vm.swappiness; reboot": "1"}, "not a kernel parameter name"),
        ({"vm.swappiness": "10\nkernel.panic = 1"}, "one line"),
        ({f"vm.k{i}": "1" for i in range(65)}, "at most 64"),
    ],
)
def test_sysctl_refuses_what_is_not_a_parameter_line(desired: dict[str, object], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        sysctl.render("", desired)


def test_reference_files_are_where_the_tests_expect_them() -> None:
    assert Path(REFERENCE).is_dir()
