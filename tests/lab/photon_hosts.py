"""Photon-like SSH hosts: each one a network namespace with its own root, sshd and firewall.

A host is a network namespace (a veth pair, one address in 10.251.X.0/24) in
which ``photon_init.sh`` runs as PID 1 of its own PID, mount and UTS
namespaces.  Its root is an overlay of the machine's ``/`` under a tmpfs, so
it runs the machine's Debian binaries (sshd, iptables, dockerd) while carrying
Photon OS 5's files: os-release, sshd_config (OpenSSH's stock file with
Photon's patch applied), the iptables script and rules, and the unit files of
sshd, iptables and docker, driven by the ``systemctl`` of the PyPI package
docker-systemctl-replacement.  Photon's files are read at run time from
``tests/lab/reference/photon-5.0`` (sources and licences in its README), and
changed only where the lab must (see ``_adapt_docker_unit``).

``systemctl reboot`` works as on a host, emulated: there is no kernel of the host's own to
restart, so PID 1 stops the services, ends every process, empties ``/run`` and ``/tmp`` and
starts the services again (``reboot()`` in ``photon_init.sh``; the apply engine of patch
changes reboots hosts).

State that ``down`` needs from another process lives in
``workdir/photon_hosts.json``, written before anything is created.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import ipaddress
import json
import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from . import common

HERE = Path(__file__).resolve().parent
REFERENCE = HERE / "reference" / "photon-5.0"
INIT = HERE / "photon_init.sh"
FILES = HERE / "photon_files"
STATE = "photon_hosts.json"
#: Second octet pair of every lab host address; the third octet is picked per lab.
NETWORK = "10.251"
#: The machine's address on every host link (the same on each root-side veth).
GATEWAY = 254
SYSTEM_PYTHON = "/usr/bin/python3"
SHIM_DIR = "usr/lib/docker-systemctl-replacement"
DOCKER_READY = (
    "ExecStartPost=/usr/bin/timeout 20 /bin/sh -c 'until docker version >/dev/null 2>&1; do sleep 0.1; done'"
)

OS_RELEASE = (
    'NAME="VMware Photon OS"\nVERSION="5.0"\nID=photon\nVERSION_ID=5.0\n'
    'PRETTY_NAME="VMware Photon OS/Linux"\nANSI_COLOR="1;34"\n'
    'HOME_URL="https://vmware.github.io/photon/"\n'
    'BUG_REPORT_URL="https://github.com/vmware/photon/issues"\n'
)

BINARIES = {
    "ip": "iproute2",
    "unshare": "util-linux",
    "nsenter": "util-linux",
    "sshd": "openssh-server",
    "ssh-keygen": "openssh-client",
    "iptables-restore": "iptables",
    "chroot": "coreutils",
}
FULL_BINARIES = {"dockerd": "docker.io", "docker": "docker.io", "containerd": "containerd", "runc": "runc"}


@dataclass
class Host:
    name: str
    netns: str
    veth: str
    address: str
    full: bool
    #: The ``unshare`` process ``spawn`` recorded; the host's PID 1 is its only child.
    pid: int = 0


# ---------------------------------------------------------------- up


def up(workdir: Path, *, hosts: int = 2, full_hosts: int = 0) -> list[dict[str, object]]:
    """Start ``hosts`` hosts (the first ``full_hosts`` with dockerd); return how to reach each."""
    if not 1 <= hosts <= 200 or not 0 <= full_hosts <= hosts:
        raise ValueError(f"hosts={hosts} full_hosts={full_hosts}")
    _check_machine(full=full_hosts > 0)
    workdir = workdir.resolve()
    if (workdir / STATE).exists():
        down(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    lab_id = _lab_id(workdir)
    octet = _free_octet()
    planned = [
        Host(
            name=f"photon-{i:02d}",
            netns=f"photon-{lab_id}-{i:02d}",
            veth=f"ph{lab_id}-{i:02d}",
            address=f"{NETWORK}.{octet}.{i}",
            full=i <= full_hosts,
        )
        for i in range(1, hosts + 1)
    ]
    _save(workdir, planned)
    try:
        return _start(workdir, planned)
    except BaseException:
        down(workdir)
        raise


def _start(workdir: Path, planned: list[Host]) -> list[dict[str, object]]:
    common_dir = workdir / "common"
    _write_common_files(common_dir)
    private_key, public_key = _lab_key(workdir)
    host_keys = {host.name: _write_host_files(workdir, host, public_key) for host in planned}
    _create_links(planned)
    # nsenter, not `ip netns exec`: that one hides the machine's /sys/fs/cgroup, which dockerd needs.
    isolate = ["unshare", "--mount", "--pid", "--uts", "--fork", "--kill-child", "--propagation", "private"]
    hide = ":".join(_hidden_trees(workdir))
    for host in planned:
        hostdir = workdir / "hosts" / host.name
        init = [
            str(INIT),
            host.name,
            f"{host.address}/24",
            str(hostdir),
            str(common_dir),
            str(int(host.full)),
            hide,
        ]
        argv = ["nsenter", f"--net=/run/netns/{host.netns}", *isolate, "/bin/bash", *init]
        host.pid = common.spawn(f"host-{host.name}", argv, workdir).pid
    _save(workdir, planned)
    timeout = 30 + (90 if any(h.full for h in planned) else 0) + len(planned)
    failure = common.wait_until(
        lambda: _boot_state(workdir, planned), timeout=timeout, what="photon hosts to boot"
    )
    if failure is not True:
        raise RuntimeError(failure)
    return [
        {
            "name": host.name,
            "address": host.address,
            "port": 22,
            "user": "root",
            "private_key": str(private_key),
            "host_key": host_keys[host.name],
            "full": host.full,
            # Its directory on the machine: a file "stay-down" there keeps it down after a
            # reboot until removed (photon_init.sh).
            "dir": str(workdir / "hosts" / host.name),
        }
        for host in planned
    ]


def _hidden_trees(workdir: Path) -> list[str]:
    """What hosts must not see of the machine: the clone (code, keys) and the lab's files."""
    kept: list[Path] = []
    for tree in sorted({common.REPO, workdir}, key=lambda p: len(p.parts)):
        # A host's /tmp is its own already; a tree inside a hidden one is hidden with it.
        if (
            tree.is_dir()
            and not tree.is_relative_to("/tmp")
            and not any(tree.is_relative_to(k) for k in kept)
        ):
            kept.append(tree)
    return [str(tree) for tree in kept]


def _lab_id(workdir: Path) -> str:
    """Names of this lab's namespaces and links, so two labs (two workdirs) can run side by side."""
    return hashlib.sha256(str(workdir).encode()).hexdigest()[:4]


def _check_machine(*, full: bool) -> None:
    common.require_root()
    for name, package in {**BINARIES, **(FULL_BINARIES if full else {})}.items():
        common.require_binary(name, package)
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        raise common.LabUnavailable(
            f"{SYSTEM_PYTHON} is missing: the hosts' systemctl runs on it (apt-get install python3)"
        )
    if not REFERENCE.is_dir():
        raise common.LabUnavailable(
            f"Photon OS reference files not found at {REFERENCE}: the clone is incomplete"
        )
    if importlib.util.find_spec("systemctl2") is None:
        raise common.LabUnavailable("pip install docker-systemctl-replacement (the hosts' systemctl)")


def _free_octet() -> int:
    """A third octet no route or address of the machine uses yet (another lab may be running)."""
    used = subprocess.run(
        ["ip", "-4", "-o", "route", "show", "table", "all"], capture_output=True, text=True
    ).stdout
    used += subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True).stdout
    taken = {int(m) for m in re.findall(rf"\b{re.escape(NETWORK)}\.(\d+)\.", used)}
    free = [octet for octet in range(1, 255) if octet not in taken]
    if not free:
        raise common.LabUnavailable(f"no free /24 left in {NETWORK}.0.0/16")
    return free[0]


def _boot_state(workdir: Path, planned: list[Host]) -> bool | str:
    """True when every host answers SSH, False while booting, why one failed (it won't recover)."""
    for host in planned:
        status_file = workdir / "hosts" / host.name / "status"
        status = status_file.read_text().strip() if status_file.exists() else ""
        if status.startswith("failed") or not common.running(host.pid):
            log = common.log_tail(workdir, f"host-{host.name}")
            return f"{host.name} did not boot ({status or 'exited'}):\n{log}"
        if status != "ready" or not common.port_open(host.address, 22):
            return False
    return True


# ---------------------------------------------------------------- files


def _write_common_files(root: Path) -> None:
    """What every host gets on top of the machine's /: Photon's files and the systemctl shim."""
    if root.exists():
        shutil.rmtree(root)
    _write(root / "etc/os-release", OS_RELEASE)
    _write(root / "etc/photon-release", "VMware Photon OS 5.0\n")
    _write(root / "etc/ssh/sshd_config", _sshd_config(), mode=0o600)
    scripts = root / "etc/systemd/scripts"
    for name in ("iptables", "iptables.stop", "ip4save", "ip6save"):
        mode = 0o755 if name.startswith("iptables") else 0o644
        _write(scripts / name, _reference(f"iptables_{name}"), mode=mode)
    units = root / "usr/lib/systemd/system"
    _write(units / "iptables.service", _reference("iptables_iptables.service"))
    _write(units / "sshd.service", _add_exec_stop(_reference("openssh_sshd.service")))
    _write(units / "sshd-keygen.service", _reference("openssh_sshd-keygen.service"))
    _write(units / "docker.service", _adapt_docker_unit(_reference("docker_docker-post19.service")))
    _write(
        root / "usr/lib/systemd/system-preset/50-docker.preset", _reference("docker_default-disable.preset")
    )
    # Photon's sshd_config names Photon's sftp-server path.
    (root / "usr/libexec").mkdir(parents=True)
    (root / "usr/libexec/sftp-server").symlink_to("/usr/lib/openssh/sftp-server")
    (root / "etc/docker").mkdir(parents=True)
    # Photon's units and any drop-in the portal pushes name Photon's paths; Debian puts dockerd in sbin.
    dockerd = shutil.which("dockerd") or "/usr/sbin/dockerd"
    if not Path("/usr/bin/dockerd").exists():
        (root / "usr/bin").mkdir(parents=True, exist_ok=True)
        (root / "usr/bin/dockerd").symlink_to(dockerd)
    _install_systemctl(root)


def _reference(name: str) -> str:
    return (REFERENCE / name).read_text()


def _write(path: Path, text: str, *, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def _sshd_config() -> str:
    """OpenSSH's stock sshd_config with Photon's patch, then what a kickstart with a public_key gives."""
    text = _apply_patch(
        (FILES / "sshd_config.openssh").read_text(),
        _reference("openssh_0001-sshd_config-Avoid-duplicate-entry.patch"),
    )
    lab = {
        # The installer enables root login by key when the kickstart carries a public_key.
        "PermitRootLogin no": "PermitRootLogin prohibit-password",
        # Without systemd-logind and Photon's PAM stack, sshd here only works with PAM off.
        "UsePAM yes": "UsePAM no",
        "#PasswordAuthentication yes": "PasswordAuthentication no",
    }
    for old, new in lab.items():
        if old not in text:
            raise RuntimeError(f"sshd_config: {old!r} not found")
        text = text.replace(old, new)
    return text


def _apply_patch(text: str, patch: str) -> str:
    """Apply a unified diff's hunks by content (enough for Photon's one-file patches)."""
    lines = text.split("\n")
    for hunk in re.split(r"^@@[^\n]*\n", patch, flags=re.M)[1:]:
        old: list[str] = []
        new: list[str] = []
        for line in hunk.split("\n"):
            if line in ("--", "-- "):  # git's signature separator ends the last hunk
                break
            tag, body = (line[:1], line[1:]) if line else (" ", "")
            if tag in " -":
                old.append(body)
            if tag in " +":
                new.append(body)
        while old and new and old[-1] == new[-1] == "":
            old.pop()
            new.pop()
        at = _find(lines, old)
        lines[at : at + len(old)] = new
    return "\n".join(lines)


def _find(lines: list[str], block: list[str]) -> int:
    for at in range(len(lines) - len(block) + 1):
        if lines[at : at + len(block)] == block:
            return at
    raise RuntimeError(f"patch hunk does not apply: {block[:3]!r}")


def _add_exec_stop(unit: str) -> str:
    # Without it the shim's restart waits 90 s for the SSH session that asked for the restart.
    return re.sub(r"^(ExecStart=.*)$", r"\1\nExecStop=/bin/kill -TERM $MAINPID", unit, count=1, flags=re.M)


def _adapt_docker_unit(unit: str) -> str:
    """Photon's docker.service as the lab can run it.

    The shim has no socket activation (so no ``-H fd://`` and no docker.socket)
    and no sd_notify (so no ``Type=notify``); without ``--containerd`` dockerd
    runs its own containerd, which stops with it.  With Type=notify `systemctl
    start` returned once dockerd answered: ExecStartPost waits for that instead
    (a drop-in that resets ExecStart= keeps it).
    """
    exec_start = f"ExecStart=/usr/bin/dockerd -H unix:///var/run/docker.sock\n{DOCKER_READY}"
    unit = re.sub(r"^ExecStart=.*$", exec_start, unit, flags=re.M)
    unit = re.sub(r"^Type=notify\n", "", unit, flags=re.M)
    unit = re.sub(r"^Requires=.*\n", "", unit, flags=re.M)
    unit = re.sub(r"^After=.*$", "After=network-online.target", unit, flags=re.M)
    return _add_exec_stop(unit)


def _install_systemctl(root: Path) -> None:
    """docker-systemctl-replacement as /usr/bin/systemctl, byte-compiled once for the host's python."""
    spec = importlib.util.find_spec("systemctl2")
    assert spec is not None and spec.submodule_search_locations
    source = Path(next(iter(spec.submodule_search_locations))) / "systemctl3.py"
    shim = root / SHIM_DIR
    shim.mkdir(parents=True)
    shutil.copy2(source, shim / "systemctl3.py")
    # 0.15 s per call from source against 0.03 s from bytecode: it counts when 20 hosts boot at once.
    compile_source = (
        "import py_compile, sys; py_compile.compile(sys.argv[1], doraise=True, "
        "invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)"
    )
    subprocess.run([SYSTEM_PYTHON, "-c", compile_source, str(shim / "systemctl3.py")], check=True)
    launcher = (FILES / "systemctl").read_text().replace("@PYTHON@", SYSTEM_PYTHON)
    _write(root / "usr/bin/systemctl", launcher.replace("@SHIM_DIR@", f"/{SHIM_DIR}"), mode=0o755)


def _lab_key(workdir: Path) -> tuple[Path, str]:
    """The portal's key pair, one per lab: every host authorizes its public half for root."""
    path = workdir / "portal_ed25519"
    if not path.exists():
        key = ed25519.Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        )
        path.write_bytes(pem)
        path.chmod(0o600)
        public = key.public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        )
        path.with_suffix(".pub").write_text(public.decode() + " portal@photon-lab\n")
    return path, path.with_suffix(".pub").read_text().strip()


def _write_host_files(workdir: Path, host: Host, authorized_key: str) -> str:
    """The files only this host has; returns its ed25519 host key line."""
    hostdir = workdir / "hosts" / host.name
    if hostdir.exists():
        shutil.rmtree(hostdir)
    for sub in ("root", "state"):
        (hostdir / sub).mkdir(parents=True)
    files = hostdir / "files"
    _write(files / "etc/hostname", f"{host.name}\n")
    _write(files / "etc/hosts", f"127.0.0.1\tlocalhost\n::1\tlocalhost\n{host.address}\t{host.name}\n")
    host_key = ""
    for kind, key in (
        ("ed25519", ed25519.Ed25519PrivateKey.generate()),
        ("ecdsa", ec.generate_private_key(ec.SECP256R1())),
    ):
        private = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        )
        public = (
            key.public_key()
            .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
            .decode()
        )
        _write(files / f"etc/ssh/ssh_host_{kind}_key", private.decode(), mode=0o600)
        _write(files / f"etc/ssh/ssh_host_{kind}_key.pub", f"{public} root@{host.name}\n")
        if kind == "ed25519":
            host_key = public
    if host.full:
        # Its containers' cgroups under a name of this lab's, so down can remove what a killed host left.
        _write(
            files / "etc/docker/daemon.json", json.dumps({"cgroup-parent": f"/{host.netns}"}, indent=2) + "\n"
        )
    ssh_dir = files / "root/.ssh"
    _write(ssh_dir / "authorized_keys", authorized_key + "\n", mode=0o600)
    ssh_dir.chmod(0o700)
    (files / "root").chmod(0o700)
    return host_key


# ---------------------------------------------------------------- network


def _create_links(planned: list[Host]) -> None:
    """One `ip -batch` for every namespace and veth: one process instead of five per host."""
    commands = []
    for host in planned:
        commands += [
            f"netns add {host.netns}",
            f"link add {host.veth} type veth peer name eth0 netns {host.netns}",
            f"addr add {_gateway(host)}/32 dev {host.veth}",
            f"link set {host.veth} up",
            f"route add {host.address}/32 dev {host.veth} src {_gateway(host)}",
        ]
    result = subprocess.run(
        ["ip", "-batch", "-"], input="\n".join(commands) + "\n", capture_output=True, text=True
    )
    if result.returncode:
        raise RuntimeError(f"creating the hosts' links failed: {result.stderr.strip()}")


def _gateway(host: Host) -> str:
    return str(ipaddress.ip_network(f"{host.address}/24", strict=False).network_address + GATEWAY)


# ---------------------------------------------------------------- down


def down(workdir: Path) -> None:
    """Stop every host, remove namespaces, links and files; safe to run twice or after a failed up."""
    workdir = workdir.resolve()
    planned = _load(workdir)
    lab_id = _lab_id(workdir)
    for host in planned:
        _signal_init(host)
    deadline = time.monotonic() + 10
    for host in planned:
        while host.pid and common.running(host.pid) and time.monotonic() < deadline:
            time.sleep(0.02)
    # Whatever did not stop in time (and any process spawn recorded) is killed here.
    common.stop_recorded(workdir, timeout=2)
    _remove_links(lab_id)
    _remove_cgroups(lab_id)
    _unmount_under(workdir)
    if workdir.exists():
        shutil.rmtree(workdir)


def _signal_init(host: Host) -> None:
    # unshare ignores SIGTERM; the host's PID 1 shuts its services down on it.
    if not host.pid:
        return
    with contextlib.suppress(OSError, ValueError):
        children = Path(f"/proc/{host.pid}/task/{host.pid}/children").read_text().split()
        for child in children:
            os.kill(int(child), signal.SIGTERM)


def _remove_links(lab_id: str) -> None:
    # Found by name, not from the state file: an up that crashed half-way leaves them too.
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    commands = [f"link del {name}" for name in re.findall(rf"^\d+: (ph{lab_id}-\d+)[@:]", links, flags=re.M)]
    commands += [
        f"netns del {name}" for name in re.findall(rf"^(photon-{lab_id}-\d+)\b", namespaces, flags=re.M)
    ]
    if commands:
        # -force: keep going past a link the kernel already removed with its namespace.
        subprocess.run(
            ["ip", "-force", "-batch", "-"], input="\n".join(commands) + "\n", capture_output=True, text=True
        )


def _remove_cgroups(lab_id: str) -> None:
    """Remove the (empty once the host is gone) cgroups the hosts' dockerds made, deepest first."""
    root = Path("/sys/fs/cgroup")
    for top in [*root.glob(f"photon-{lab_id}-*"), *root.glob(f"*/photon-{lab_id}-*")]:
        for directory in sorted((d for d in top.rglob("*") if d.is_dir()), key=lambda d: -len(d.parts)):
            with contextlib.suppress(OSError):
                directory.rmdir()
        with contextlib.suppress(OSError):
            top.rmdir()


def _unmount_under(workdir: Path) -> None:
    prefix = str(workdir) + "/"
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for target in sorted((m for m in mounts if m.startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "-l", target], capture_output=True)


# ---------------------------------------------------------------- state


def _save(workdir: Path, planned: list[Host]) -> None:
    tmp = workdir / f"{STATE}.tmp"
    tmp.write_text(json.dumps([asdict(host) for host in planned], indent=1))
    tmp.replace(workdir / STATE)


def _load(workdir: Path) -> list[Host]:
    with contextlib.suppress(FileNotFoundError, ValueError):
        return [Host(**entry) for entry in json.loads((workdir / STATE).read_text())]
    return []
