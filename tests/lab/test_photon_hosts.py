"""The lab's Photon hosts behave like separate Photon OS 5 machines reached over SSH."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import docker
import pytest

from tests.lab import common, photon_hosts
from tests.lab.fixtures import start

Host = dict[str, object]


def _up_or_skip(workdir: Path, **options: int) -> list[Host]:
    return start(lambda: photon_hosts.up(workdir, **options))


@pytest.fixture(scope="session")
def machine_firewall() -> str:
    """The machine's own rules before any host starts: the lab must not change them."""
    return _iptables_save()


@pytest.fixture(scope="session")
def hosts(tmp_path_factory: pytest.TempPathFactory, machine_firewall: str) -> Iterator[list[Host]]:
    workdir = tmp_path_factory.mktemp("photon-hosts")
    started = time.monotonic()
    lab = _up_or_skip(workdir, hosts=2, full_hosts=1)
    print(f"\n2 photon hosts (1 with dockerd) up in {time.monotonic() - started:.2f}s")
    yield lab
    started = time.monotonic()
    photon_hosts.down(workdir)
    print(f"\n2 photon hosts down in {time.monotonic() - started:.2f}s")


def _iptables_save() -> str:
    # Counters change with every packet; the rules are what matters.
    text = subprocess.run(["iptables-save"], capture_output=True, text=True).stdout
    return "\n".join(line for line in text.splitlines() if not line.startswith(("#", ":")))


def _connect(host: Host, *, host_key: object = None, **options: object) -> asyncssh.SSHClientConnection:
    trusted = asyncssh.import_public_key(str(host_key or host["host_key"]))
    defaults: dict[str, object] = {"client_keys": [str(host["private_key"])], "connect_timeout": 10}
    return asyncssh.connect(
        str(host["address"]),
        port=int(host["port"]),  # type: ignore[call-overload]
        username=str(host["user"]),
        known_hosts=([trusted], [], []),
        **{**defaults, **options},
    )


async def _run(host: Host, command: str, *, check: bool = True) -> asyncssh.SSHCompletedProcess:
    async with _connect(host) as conn:
        return await conn.run(command, check=check)


def run(host: Host, command: str, *, check: bool = True) -> str:
    return str(asyncio.run(_run(host, command, check=check)).stdout)


def test_root_logs_in_with_the_lab_key_on_photon_os(hosts: list[Host]) -> None:
    first = hosts[0]
    assert re.fullmatch(r"ssh-ed25519 AAAA\S+", str(first["host_key"]))
    os_release = run(first, "cat /etc/os-release")
    assert "ID=photon" in os_release.splitlines()
    assert "VERSION_ID=5.0" in os_release.splitlines()
    assert 'PRETTY_NAME="VMware Photon OS/Linux"' in os_release
    assert run(first, "hostname").strip() == first["name"] == "photon-01"
    assert run(first, "id -u").strip() == "0"


def test_sshd_runs_with_photons_settings(hosts: list[Host]) -> None:
    effective = run(hosts[0], "sshd -T")
    for setting in (
        "permitrootlogin without-password",  # sshd -T's name for prohibit-password
        "maxauthtries 4",
        "passwordauthentication no",
        "allowagentforwarding no",
        "allowtcpforwarding no",
        "tcpkeepalive no",
        "clientalivecountmax 2",
    ):
        assert setting in effective.splitlines()
    keys = run(hosts[0], "stat -c '%a %n' /etc/ssh/ssh_host_*_key").split()
    assert keys and set(keys[::2]) == {"600"}


def test_hosts_have_their_own_host_keys(hosts: list[Host]) -> None:
    assert hosts[0]["host_key"] != hosts[1]["host_key"]
    served = run(hosts[0], "cat /etc/ssh/ssh_host_ed25519_key.pub").split()[:2]
    assert " ".join(served) == hosts[0]["host_key"]


def test_a_wrong_host_key_is_refused(hosts: list[Host]) -> None:
    async def attempt() -> None:
        async with _connect(hosts[0], host_key=hosts[1]["host_key"]):
            pass

    with pytest.raises(asyncssh.HostKeyNotVerifiable):
        asyncio.run(attempt())


def test_a_password_login_is_refused(hosts: list[Host]) -> None:
    async def attempt() -> None:
        async with _connect(hosts[0], client_keys=None, password="photon", agent_path=None):
            pass

    with pytest.raises(asyncssh.PermissionDenied):
        asyncio.run(attempt())


def test_a_write_to_etc_stays_in_its_host(hosts: list[Host]) -> None:
    probe = f"/etc/photon-lab-probe-{os.getpid()}"
    run(hosts[0], f"echo written > {probe}")
    try:
        assert run(hosts[0], f"cat {probe}").strip() == "written"
        assert run(hosts[1], f"test -e {probe} && echo present || echo absent").strip() == "absent"
        assert not Path(probe).exists()
    finally:
        run(hosts[0], f"rm -f {probe}")


def test_the_project_tree_is_hidden_from_hosts(hosts: list[Host]) -> None:
    # Wherever the checkout lives (/work, /tmp, ...), its files are not inside a host.
    assert not run(hosts[0], f"test -e {common.REPO / 'manage.py'} && echo leaked", check=False).strip()
    assert not run(hosts[0], f"test -e {hosts[0]['private_key']} && echo leaked", check=False).strip()


def test_systemctl_restart_sshd_starts_a_new_sshd(hosts: list[Host]) -> None:
    before = run(hosts[0], "cat /var/run/sshd.pid").strip()
    run(hosts[0], "systemctl restart sshd 2>/dev/null && systemctl is-active sshd")
    after = common.wait_until(
        lambda: run(hosts[0], "cat /var/run/sshd.pid").strip(), timeout=10, what="sshd back after restart"
    )
    assert after != before
    assert run(hosts[0], f"ps -o comm= -p {after}").strip() == "sshd"


def test_the_firewall_drops_a_port_it_does_not_open(hosts: list[Host], machine_firewall: str) -> None:
    host = hosts[0]
    rules = run(host, "iptables -S")
    assert "-P INPUT DROP" in rules and "--dport 22 -j ACCEPT" in rules
    # A real listener on 8080 answers inside the host, yet not from outside.
    run(host, "nohup python3 -m http.server 8080 >/dev/null 2>&1 &")
    try:
        local = "python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", 8080), 2)'"
        common.wait_until(
            lambda: run(host, f"{local} && echo up"), timeout=10, what="the listener inside the host"
        )
        with pytest.raises(TimeoutError):
            socket.create_connection((str(host["address"]), 8080), timeout=1.5)
    finally:
        run(host, "pkill -f 'http.server 8080'", check=False)
    assert _iptables_save() == machine_firewall
    assert "10.251." not in machine_firewall


def test_systemctl_restart_iptables_reloads_photons_rules(hosts: list[Host]) -> None:
    host = hosts[1]
    run(host, "iptables -I INPUT -p tcp --dport 9999 -j ACCEPT")
    assert "--dport 9999" in run(host, "iptables -S INPUT")
    run(host, "systemctl restart iptables 2>/dev/null")
    rules = run(host, "iptables -S INPUT")
    assert "--dport 9999" not in rules and "--dport 22 -j ACCEPT" in rules


def test_docker_answers_on_the_full_host_only(hosts: list[Host]) -> None:
    full, light = hosts
    assert full["full"] and not light["full"]
    assert run(full, "docker version --format '{{.Server.Version}}'").strip()
    assert run(full, "systemctl is-active docker").strip() == "active"
    assert run(light, "systemctl is-active docker", check=False).strip() != "active"


def test_a_pushed_docker_drop_in_changes_what_answers_on_tcp(hosts: list[Host]) -> None:
    full = hosts[0]
    address = str(full["address"])
    assert not common.port_open(address, 2375)
    # --tls=false: dockerd otherwise delays a plain TCP listener by 15 s on purpose.
    drop_in = (
        "[Service]\nExecStart=\n"
        "ExecStart=/usr/bin/dockerd -H unix:///var/run/docker.sock -H tcp://0.0.0.0:2375 --tls=false\n"
    )
    directory = "/etc/systemd/system/docker.service.d"

    async def push() -> None:
        async with _connect(full) as conn:
            await conn.run(f"mkdir -p {directory}", check=True)
            async with conn.start_sftp_client() as sftp:
                async with sftp.open(f"{directory}/.lab-tcp.conf.tmp", "w") as handle:
                    await handle.write(drop_in)
                await sftp.posix_rename(f"{directory}/.lab-tcp.conf.tmp", f"{directory}/lab-tcp.conf")
            await conn.run("iptables -I INPUT -p tcp --dport 2375 -j ACCEPT", check=True)
            await conn.run(
                "systemctl daemon-reload 2>/dev/null && systemctl restart docker 2>/dev/null", check=True
            )

    asyncio.run(push())
    try:
        client = docker.DockerClient(base_url=f"tcp://{address}:2375", timeout=10)
        version = common.wait_until(client.version, timeout=30, what="dockerd on tcp/2375")
        assert version["ApiVersion"]  # type: ignore[index]
        assert client.info()["Name"] == full["name"]
        client.close()
    finally:
        run(full, f"rm -f {directory}/lab-tcp.conf && systemctl daemon-reload 2>/dev/null")
        run(full, "systemctl restart docker 2>/dev/null; systemctl restart iptables 2>/dev/null")
    assert not common.port_open(address, 2375)


def test_twenty_hosts_come_up_fast_and_go_down_clean(tmp_path_factory: pytest.TempPathFactory) -> None:
    workdir = tmp_path_factory.mktemp("photon-twenty")
    started = time.monotonic()
    lab = _up_or_skip(workdir, hosts=20)
    up_seconds = time.monotonic() - started
    print(f"\n20 photon hosts up in {up_seconds:.2f}s")
    try:

        async def everyone() -> list[str]:
            return list(await asyncio.gather(*(_run(host, "hostname") for host in lab)))

        names = [out.stdout.strip() for out in asyncio.run(everyone())]  # type: ignore[attr-defined]
        assert names == [f"photon-{i:02d}" for i in range(1, 21)]
        assert len({host["address"] for host in lab}) == 20
    finally:
        started = time.monotonic()
        photon_hosts.down(workdir)
        print(f"20 photon hosts down in {time.monotonic() - started:.2f}s")
    # How fast is measured by tests/bench/lab.py, not asserted: the machines are noisy.
    _assert_nothing_left(workdir, lab)
    # up after down: the names and addresses are free again.
    again = _up_or_skip(workdir, hosts=1)
    assert run(again[0], "hostname").strip() == "photon-01"
    photon_hosts.down(workdir)
    _assert_nothing_left(workdir, again)
    photon_hosts.down(workdir)  # idempotent


def _assert_nothing_left(workdir: Path, lab: list[Host]) -> None:
    lab_id = photon_hosts._lab_id(workdir.resolve())
    assert not workdir.exists()
    assert (
        f"photon-{lab_id}-"
        not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    )
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert f"ph{lab_id}-" not in links
    routes = subprocess.run(["ip", "route"], capture_output=True, text=True).stdout
    assert not any(str(host["address"]) in routes for host in lab)
    assert str(workdir) not in Path("/proc/mounts").read_text()
    processes = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert str(workdir) not in processes
