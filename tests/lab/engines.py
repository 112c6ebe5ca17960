"""Real Docker engines for the lab: Debian's dockerd (20.10), some plain, some with ``--tlsverify``.

Each engine is its own ``containerd`` plus ``dockerd`` pair, with everything of
its own: data root, exec root, pid files, unix socket, trust key (the engine
id), cgroup parent, and a TCP port on 127.0.0.1. It gets the lab's busybox
images and a few containers (running, exited with different codes, created
only), all with ``network_mode=none`` so nothing touches the machine's
network.

Layout under ``workdir``::

    ca/                        the lab CA and the portal's client certificate (TLS engines)
    NAME/state.json            what ``down`` needs, written before anything starts
    NAME/{data,containerd}/    dockerd's and containerd's roots
    NAME/{pids,logs}/          as ``common.spawn`` keeps them
    /run/plab/TOKEN/           the exec root: kept short because dockerd puts unix
                               sockets with 64-character names in it (108-byte limit)

The engine's own containerd is started explicitly rather than by dockerd: a
dockerd that finds ``/run/containerd/containerd.sock`` would otherwise share
that one, and its ``/etc/containerd/config.toml``.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import docker
from docker.models.containers import Container

from tests.lab import common, images, pki

EXEC_BASE = Path("/run/plab")
CGROUP_ROOT = Path("/sys/fs/cgroup")
#: A container's main process that leaves on SIGTERM, so stopping it (and the engine) is quick.
SERVE_CMD = ["sh", "-c", "trap 'exit 0' TERM; echo started; sleep 3600 & wait"]
ENGINE_LABEL = "com.example.lab.engine"


@dataclass(frozen=True)
class EngineState:
    """Everything ``down`` needs to find an engine's leftovers, from any process."""

    name: str
    engine_dir: str
    exec_root: str
    cgroup_parent: str
    port: int
    tls: bool

    @classmethod
    def load(cls, path: Path) -> EngineState:
        return cls(**json.loads(path.read_text()))

    @property
    def socket(self) -> str:
        return f"{self.exec_root}/docker.sock"

    @property
    def url(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"


# -- starting ------------------------------------------------------------------------------------


def up(workdir: Path, *, plain: int = 1, tls: int = 1) -> list[dict[str, Any]]:
    """Start ``plain`` + ``tls`` engines, filled with images and containers, and describe them.

    Each item: ``{"name", "url": "tcp://127.0.0.1:PORT", "socket": "/run/plab/.../docker.sock",
    "tls": None | {"ca", "cert", "key"}, "images": {ref: id}, "containers": {"running": [...],
    "exited": {name: code}, "created": [...]}}``. ``tls`` holds the portal's client certificate.
    """
    common.require_root()
    for binary, package in (("dockerd", "docker.io"), ("containerd", "containerd"), ("runc", "runc")):
        common.require_binary(binary, package)
    archive = images.build()
    # Absolute paths in state.json, so down works from any working directory.
    workdir = workdir.resolve()
    down(workdir)
    workdir.mkdir(parents=True)
    client_tls = _client_certificates(workdir) if tls else None
    specs = [(f"plain{i}", False) for i in range(1, plain + 1)] + [
        (f"tls{i}", True) for i in range(1, tls + 1)
    ]
    try:
        # Leaving the pool waits for every engine, so a failed up cleans up after all of them.
        with ThreadPoolExecutor(max_workers=max(1, len(specs))) as pool:
            futures = [pool.submit(_start_engine, workdir, name, is_tls, archive) for name, is_tls in specs]
            started = [future.result() for future in futures]
    except BaseException:
        down(workdir)
        raise
    return [{**engine, "tls": client_tls if engine["tls"] else None} for engine in started]


def _client_certificates(workdir: Path) -> dict[str, str]:
    ca = pki.CertificateAuthority.create(workdir / "ca", "Photon Portal lab Docker CA")
    return ca.issue_client(workdir / "ca", "portal-client", "photon-portal").as_dict()


def _start_engine(workdir: Path, name: str, tls: bool, archive: images.Archive) -> dict[str, Any]:
    engine_dir = workdir / name
    token = secrets.token_hex(4)
    state = EngineState(
        name=name,
        engine_dir=str(engine_dir),
        exec_root=str(EXEC_BASE / token),
        # Absolute: a relative parent would be placed under the cgroup runc itself runs in.
        cgroup_parent=f"/plab-{token}",
        port=common.free_port(),
        tls=tls,
    )
    engine_dir.mkdir(parents=True)
    (engine_dir / "state.json").write_text(json.dumps(asdict(state), indent=2))
    Path(state.exec_root).mkdir(parents=True, mode=0o700)
    _start_containerd(state)
    _start_dockerd(state, workdir)
    sdk = docker.DockerClient(base_url=f"unix://{state.socket}", timeout=60, version="1.41")
    try:
        images.load(sdk, archive)
        containers = _populate(sdk, name, archive)
    finally:
        sdk.close()
    return {
        "name": name,
        "url": state.url,
        "socket": state.socket,
        "tls": tls,
        "images": archive.images,
        "containers": containers,
    }


def _start_containerd(state: EngineState) -> None:
    engine_dir, exec_root = Path(state.engine_dir), Path(state.exec_root)
    config = engine_dir / "containerd.toml"
    config.write_text(
        "\n".join(
            [
                "version = 2",
                f'root = "{engine_dir / "containerd"}"',
                f'state = "{exec_root / "containerd"}"',
                # Snapshotters dockerd never uses (it has its own overlay2), and Kubernetes' CRI.
                'disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs",'
                ' "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",'
                ' "io.containerd.snapshotter.v1.devmapper"]',
                "[grpc]",
                f'  address = "{exec_root / "containerd.sock"}"',
                "[ttrpc]",
                f'  address = "{exec_root / "containerd.sock.ttrpc"}"',
                '[plugins."io.containerd.internal.v1.opt"]',
                f'  path = "{engine_dir / "containerd" / "opt"}"',
                "",
            ]
        )
    )
    proc = common.spawn("containerd", ["containerd", "--config", str(config)], engine_dir)
    sock = exec_root / "containerd.sock"
    _wait_alive(proc, engine_dir, "containerd", lambda: sock.is_socket(), timeout=30)


def _start_dockerd(state: EngineState, workdir: Path) -> None:
    engine_dir, exec_root = Path(state.engine_dir), Path(state.exec_root)
    # The trust key is the engine's id, and would otherwise be the machine's shared /etc/docker/key.json.
    daemon_json = {"deprecated-key-path": str(engine_dir / "key.json")}
    (engine_dir / "daemon.json").write_text(json.dumps(daemon_json) + "\n")
    argv = [
        "dockerd",
        # Hermetic: not the machine's /etc/docker/daemon.json.
        "--config-file", str(engine_dir / "daemon.json"),
        "--data-root", str(engine_dir / "data"),
        "--exec-root", str(exec_root),
        "--pidfile", str(engine_dir / "dockerd.pid"),
        "--containerd", str(exec_root / "containerd.sock"),
        "--cgroup-parent", state.cgroup_parent,
        "-H", f"unix://{state.socket}",
        "-H", state.url,
        "--iptables=false", "--ip-masq=false", "--ip-forward=false", "--bridge=none",
    ]  # fmt: skip
    if state.tls:
        server = pki.CertificateAuthority.load(workdir / "ca").issue_server(
            engine_dir / "tls", "server", ips=("127.0.0.1",), dns=("localhost",)
        )
        argv += ["--tlsverify", "--tlscacert", str(server.ca), "--tlscert", str(server.cert)]
        argv += ["--tlskey", str(server.key)]
    proc = common.spawn("dockerd", argv, engine_dir)
    _wait_alive(proc, engine_dir, "dockerd", lambda: _unix_ping(state.socket), timeout=60)
    common.wait_until(lambda: common.port_open("127.0.0.1", state.port), timeout=10, what=f"{state.url}")


def _wait_alive(
    proc: subprocess.Popen[bytes], engine_dir: Path, name: str, ready: Callable[[], bool], *, timeout: float
) -> None:
    """Wait for ``ready()``, failing at once (with the log) if the process died instead."""
    try:
        common.wait_until(
            lambda: proc.poll() is not None or ready(), timeout=timeout, what=f"{name} in {engine_dir}"
        )
    except TimeoutError as exc:
        raise TimeoutError(f"{exc}\n{common.log_tail(engine_dir, name)}") from exc
    if proc.poll() is not None:
        raise RuntimeError(f"{name} exited with {proc.returncode}:\n{common.log_tail(engine_dir, name)}")


def _unix_ping(socket_path: str) -> bool:
    if not Path(socket_path).is_socket():
        return False
    api = docker.APIClient(base_url=f"unix://{socket_path}", timeout=2, version="1.41")
    try:
        return bool(api.ping())
    finally:
        api.close()


def _populate(sdk: docker.DockerClient, engine: str, archive: images.Archive) -> dict[str, Any]:
    """Create the lab's containers: two running, two exited (codes 0 and 3), one never started."""
    busybox, tools = archive.busybox_ref, images.TOOLS_REF

    def create(name: str, image: str, command: list[str], app: str, **options: Any) -> Container:
        labels = {ENGINE_LABEL: engine, "com.example.app": app, **options.pop("labels", {})}
        return sdk.containers.create(
            image, command, name=name, labels=labels, network_mode="none", detach=True, **options
        )

    running = [
        create("web", busybox, SERVE_CMD, "web", labels={"com.example.lab.odd": images.ODD_VALUE}),
        create(
            "worker", tools, SERVE_CMD, "worker", labels={"tier": "backend"}, environment={"QUEUE": "default"}
        ),
    ]
    exited = {
        0: create("job-ok", busybox, ["sh", "-c", "echo done"], "job"),
        3: create("job-failed", busybox, ["sh", "-c", "echo failing >&2; exit 3"], "job"),
    }
    create("never-started", busybox, ["true"], "idle")
    for container in [*running, *exited.values()]:
        container.start()
    for code, container in exited.items():
        result = container.wait(timeout=30)
        if result["StatusCode"] != code:
            raise RuntimeError(f"{engine}: {container.name} ended with {result}, expected exit code {code}")
    for container in running:
        common.wait_until(
            lambda c=container: b"started" in c.logs(), timeout=30, what=f"{engine}: {container.name}"
        )
    return {
        "running": sorted(c.name for c in running),
        "exited": {c.name: code for code, c in exited.items()},
        "created": ["never-started"],
    }


# -- clients ---------------------------------------------------------------------------------------


def connect(engine: dict[str, Any], *, timeout: int = 30) -> docker.DockerClient:
    """A docker SDK client for one engine from ``up``'s list, trusting only the lab's CA.

    ``trust_env`` is off because requests would otherwise let ``REQUESTS_CA_BUNDLE`` /
    ``CURL_CA_BUNDLE`` replace the CA given here (and apply proxy variables to 127.0.0.1).
    """
    tls = engine.get("tls")
    tls_config = (
        docker.tls.TLSConfig(ca_cert=tls["ca"], client_cert=(tls["cert"], tls["key"]), verify=tls["ca"])
        if tls
        else False
    )
    sdk = docker.DockerClient(base_url=engine["url"], tls=tls_config, timeout=timeout, version="1.41")
    sdk.api.trust_env = False
    return sdk


# -- stopping --------------------------------------------------------------------------------------


def down(workdir: Path) -> None:
    """Stop every engine under ``workdir`` and remove all it left: processes, mounts, cgroups, files."""
    workdir = workdir.resolve()
    states = [EngineState.load(p) for p in sorted(workdir.glob("*/state.json"))]
    if states:
        with ThreadPoolExecutor(max_workers=len(states)) as pool:
            list(pool.map(_stop_engine, states))
    shutil.rmtree(workdir, ignore_errors=True)
    # dockerd and the shims create these whatever their roots: removed, but only once empty.
    shared = ("/run/docker/plugins", "/run/docker", "/run/containerd/s", "/run/containerd", str(EXEC_BASE))
    for leftover in map(Path, shared):
        with contextlib.suppress(OSError):
            leftover.rmdir()


def _stop_engine(state: EngineState) -> None:
    engine_dir = Path(state.engine_dir)
    # dockerd first (it stops its containers through containerd), then containerd.
    common.stop_recorded(engine_dir, timeout=30)
    _kill_leftovers(state)
    _unmount_under(state.engine_dir, state.exec_root)
    _remove_cgroups(state.cgroup_parent)
    shutil.rmtree(state.exec_root, ignore_errors=True)
    shutil.rmtree(engine_dir, ignore_errors=True)


def _leftover_pids(state: EngineState) -> set[int]:
    """Daemons and shims (named by the random exec root) and container processes (by cgroup)."""
    markers = (state.exec_root + "/", f"{state.engine_dir}/containerd.toml")
    pids: set[int] = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if any(marker in cmdline for marker in markers):
                pids.add(int(proc.name))
    for procs in CGROUP_ROOT.glob(f"*/{state.cgroup_parent.lstrip('/')}/**/cgroup.procs"):
        with contextlib.suppress(OSError):
            pids.update(int(line) for line in procs.read_text().split())
    pids.discard(os.getpid())
    return pids


def _kill_leftovers(state: EngineState) -> None:
    for pid in _leftover_pids(state):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    common.wait_until(lambda: not _leftover_pids(state), timeout=10, what=f"{state.name}'s processes to exit")


def _mountpoints_under(*roots: str) -> list[str]:
    found = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        # /proc/mounts escapes space, tab, newline and backslash as octal.
        point = line.split()[1].encode().decode("unicode_escape")
        if any(point == root or point.startswith(root.rstrip("/") + "/") for root in roots):
            found.append(point)
    return found


def _unmount_under(*roots: str) -> None:
    # Deepest first: overlays and netns files sit inside the data root's own bind mount.
    for point in sorted(_mountpoints_under(*roots), key=len, reverse=True):
        if subprocess.run(["umount", point], capture_output=True, check=False).returncode:
            subprocess.run(["umount", "--lazy", point], capture_output=True, check=False)
    common.wait_until(lambda: not _mountpoints_under(*roots), timeout=10, what=f"mounts under {roots} to go")


def _remove_cgroups(parent: str) -> None:
    for top in CGROUP_ROOT.glob(f"*/{parent.lstrip('/')}"):
        # Children first: a cgroup directory can only be removed once it has none.
        for directory in sorted(
            (p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True
        ):
            with contextlib.suppress(OSError):
                directory.rmdir()
        with contextlib.suppress(OSError):
            top.rmdir()
