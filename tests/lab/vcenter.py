"""The lab's vCenter: govmomi's simulator (vcsim) with a Photon OS fleet in it.

Debian ships the simulator as a Go library only, so ``vcsim/main.go`` is the
lab's own command; it is built once per machine into ``var/cache/vcsim`` and
rebuilt when its source changes.  The inventory is deterministic: the same
options give the same names, managed object ids, guests and addresses, which is
what lets ``restart`` bring back "the same vCenter" for reconnect tests (state
changed through the API since ``up`` is not kept).

State lives in ``workdir/vcsim`` (certificate, the argv to start again) and
the simulator's datastore files on tmpfs (see ``datastore_dir``); the pid is
recorded by ``common.spawn`` as ``workdir/pids/vcsim``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import secrets
import shutil
import ssl
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.lab import common, pki

NAME = "vcsim"
SOURCE = Path(__file__).with_name("vcsim") / "main.go"
BINARY = common.CACHE / "vcsim" / "vcsim"
GOVMOMI_SIMULATOR = Path("/usr/share/gocode/src/github.com/vmware/govmomi/simulator")
USER = "administrator@vsphere.local"


def up(
    workdir: Path,
    *,
    datacenters: int = 1,
    clusters: int = 2,
    hosts: int = 2,
    vms: int = 100,
    photon_share: float = 0.3,
    guests: Sequence[dict[str, str]] = (),
    templates: int = 0,
    user: str = USER,
    password: str | None = None,
) -> dict[str, Any]:
    """Start vcsim with at least ``vms`` VMs, ``photon_share`` of them Photon OS guests.

    ``guests`` (``{"ip": ..., "hostname": ...}``) replace the documentation-range
    address and host name of the first Photon VMs, to point them at real lab hosts.
    ``templates`` Photon VMs are marked as templates (``photon-5-template-N``), for provisioning.
    """
    if datacenters < 1 or clusters < 1 or hosts < 1:
        raise ValueError("vcsim needs at least one datacenter, cluster and host")
    down(workdir)
    binary = build()
    state = _state_dir(workdir)
    state.mkdir(parents=True)
    datastore_dir(workdir).mkdir(parents=True)
    cert, key = _write_certificate(state)
    port = common.free_port()
    argv = [
        str(binary),
        f"-listen=127.0.0.1:{port}",
        f"-dc={datacenters}",
        f"-cluster={clusters}",
        f"-host={hosts}",
        f"-vm={vms_per_pool(vms, datacenters=datacenters, clusters=clusters)}",
        f"-photon-share={photon_share}",
        f"-templates={templates}",
        f"-username={user}",
        f"-password={password or 'Lab-' + secrets.token_urlsafe(12)}",
        f"-tls-cert={cert}",
        f"-tls-key={key}",
        f"-ready={state / 'ready.json'}",
    ]
    if guests:
        (state / "guests.json").write_text(json.dumps(list(guests)))
        argv.append(f"-guests={state / 'guests.json'}")
    (state / "argv.json").write_text(json.dumps(argv))
    return _start(workdir, argv, timeout=30 + vms / 100)


def down(workdir: Path) -> None:
    """Stop vcsim and remove its state; safe to call twice or after a crashed ``up``."""
    for pid in _recorded_pids(workdir):
        if _is_ours(pid):
            common.stop_pid(pid)
    (workdir / "pids" / NAME).unlink(missing_ok=True)
    shutil.rmtree(datastore_dir(workdir), ignore_errors=True)
    shutil.rmtree(_state_dir(workdir), ignore_errors=True)


def restart(workdir: Path) -> dict[str, Any]:
    """Stop vcsim and start it again on the same port with the same model and certificate.

    Sessions opened before are gone afterwards, as after a real vCenter restart.
    """
    argv = json.loads((_state_dir(workdir) / "argv.json").read_text())
    for pid in _recorded_pids(workdir):
        if _is_ours(pid):
            common.stop_pid(pid)
    (_state_dir(workdir) / "ready.json").unlink(missing_ok=True)
    port = int(argv[1].rsplit(":", 1)[1])
    common.wait_until(
        lambda: not common.port_open("127.0.0.1", port), timeout=10, what="vcsim's port to close"
    )
    return _start(workdir, argv, timeout=60)


def vms_per_pool(vms: int, *, datacenters: int, clusters: int) -> int:
    """The simulator makes its VM count per cluster resource pool; round up to reach ``vms``."""
    return max(1, math.ceil(vms / (datacenters * clusters)))


def thumbprint(der: bytes) -> str:
    """SHA-256 fingerprint as vSphere shows it: ``AB:CD:...``."""
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


def served_thumbprint(host: str, port: int) -> str:
    pem = ssl.get_server_certificate((host, port), timeout=5)
    return thumbprint(ssl.PEM_cert_to_DER_cert(pem))


def build() -> Path:
    """Build vcsim/main.go into the cache unless the binary there was built from this source."""
    if not GOVMOMI_SIMULATOR.is_dir():
        raise common.LabUnavailable(
            f"{GOVMOMI_SIMULATOR} missing: apt-get install golang-github-vmware-govmomi-dev"
        )
    return common.build_go(SOURCE, NAME)


def _start(workdir: Path, argv: list[str], *, timeout: float) -> dict[str, Any]:
    state = _state_dir(workdir)
    proc = common.spawn(NAME, argv, workdir, env={"TMPDIR": str(datastore_dir(workdir))})
    ready = state / "ready.json"
    try:
        common.wait_until(
            lambda: ready.exists() or proc.poll() is not None, timeout=timeout, what="vcsim to serve"
        )
        if not ready.exists():
            raise RuntimeError(f"vcsim exited with {proc.returncode}:\n{common.log_tail(workdir, NAME)}")
        info = json.loads(ready.read_text())
        port = int(info["url"].split(":")[2].split("/")[0])
        expected = thumbprint(ssl.PEM_cert_to_DER_cert((state / "cert.pem").read_text()))
        # A TLS handshake with the right certificate is the proof that it answers.
        common.wait_until(
            lambda: served_thumbprint("127.0.0.1", port) == expected, timeout=10, what="vcsim's TLS"
        )
    except BaseException:
        down(workdir)
        raise
    user, password = (_flag(argv, name) for name in ("username", "password"))
    return {
        "url": info["url"],
        "user": user,
        "password": password,
        "thumbprint": expected,
        "certificate": str(state / "cert.pem"),
        "ca_certificate": str(state / "ca.pem"),
        "vms": info["vms"],
        "photon_vms": info["photon_vms"],
        "awkward_names": info["awkward_names"],
        "powered_off_photon": info["powered_off_photon"],
        "templates": info["templates"],
    }


def _flag(argv: list[str], name: str) -> str:
    prefix = f"-{name}="
    return next(a[len(prefix) :] for a in argv if a.startswith(prefix))


def _state_dir(workdir: Path) -> Path:
    return workdir / NAME


def datastore_dir(workdir: Path) -> Path:
    """Where the simulator keeps its datastores (a directory and files per VM).

    On tmpfs when there is one: on this machine's disk, creating 1,000 VMs takes
    10 s instead of 1 s.  Named after the workdir so ``down`` finds it without state.
    """
    shm = Path("/dev/shm")
    if not shm.is_dir() or not os.access(shm, os.W_OK):
        return _state_dir(workdir) / "datastores"
    key = hashlib.sha256(str(workdir.resolve()).encode()).hexdigest()[:16]
    return shm / f"photon-portal-lab-vcsim-{key}"


def _recorded_pids(workdir: Path) -> list[int]:
    """The pid spawn recorded, and the one vcsim wrote itself (in case the pids dir was lost)."""
    pids = []
    with contextlib.suppress(FileNotFoundError, ValueError):
        pids.append(int((workdir / "pids" / NAME).read_text().strip()))
    with contextlib.suppress(FileNotFoundError, ValueError, KeyError):
        pids.append(int(json.loads((_state_dir(workdir) / "ready.json").read_text())["pid"]))
    return sorted(set(pids))


def _is_ours(pid: int) -> bool:
    """Guard against a recycled pid: only signal a process running the cached vcsim binary."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return cmdline.split(b"\0", 1)[0] == str(BINARY).encode()


def _write_certificate(state: Path) -> tuple[Path, Path]:
    """A leaf for 127.0.0.1 signed by a lab CA, as vCenter's VMCA does: clients must pin it.

    Not self-signed on purpose: pinning code that only works when the leaf is its
    own issuer would fail against a real vCenter. RSA, as VMCA issues.
    """
    ca = pki.CertificateAuthority.create(state, "CA (lab VMCA)", algorithm="rsa")
    files = ca.issue_server(
        state, "cert", ips=("127.0.0.1",), dns=("vcsim.lab.example", "localhost"), algorithm="rsa"
    )
    return files.cert, files.key
