"""What every lab peer shares: where it keeps its files, ports, processes, waiting.

Each peer module (``vcenter``, ``engines``, ``registries``, ``harbor``,
``photon_hosts``) exposes ``up(workdir: Path, **options) -> dict`` (the JSON
section that ``python -m tests.lab up --json`` prints for it) and
``down(workdir: Path) -> None`` (idempotent; must also clean up after a crashed
``up``).  Processes are started detached so the lab outlives the command that
started it; their pids are recorded under ``workdir/pids`` so ``down`` from
another process can stop them.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LAB_ROOT = Path(os.environ.get("PORTAL_LAB_DIR", REPO / "var" / "lab"))
#: Built artefacts that survive ``down`` (the vcsim binary, images), so they are
#: built once per machine.
CACHE = REPO / "var" / "cache"


class LabUnavailable(RuntimeError):
    """The lab cannot run here (not root, a missing package, no namespaces)."""


def require_root() -> None:
    if os.geteuid() != 0:
        raise LabUnavailable("the lab needs root (network namespaces, dockerd)")


def require_binary(name: str, debian_package: str) -> str:
    path = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}", f"/sbin/{name}") if os.access(p, os.X_OK)),
        None,
    )
    if not path:
        raise LabUnavailable(f"{name} not found: apt-get install {debian_package}")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(
    predicate: Callable[[], object], *, timeout: float, what: str, interval: float = 0.05
) -> object:
    """Poll ``predicate`` until it returns something truthy; raise with ``what`` on timeout.

    Exceptions from the predicate count as "not yet" (a port that refuses, a
    file not written yet), and the last one is reported.
    """
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        try:
            result = predicate()
            if result:
                return result
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready yet"
            last = exc
        if time.monotonic() > deadline:
            detail = f": {last!r}" if last else ""
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}{detail}")
        time.sleep(interval)
        interval = min(interval * 1.5, 0.5)


def port_open(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def spawn(
    name: str,
    argv: Sequence[str],
    workdir: Path,
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start a detached process, logging to ``workdir/logs/NAME.log``, pid in ``workdir/pids/NAME``."""
    (workdir / "logs").mkdir(parents=True, exist_ok=True)
    (workdir / "pids").mkdir(parents=True, exist_ok=True)
    log = open(workdir / "logs" / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        start_new_session=True,
    )
    log.close()
    (workdir / "pids" / name).write_text(str(proc.pid))
    return proc


def log_tail(workdir: Path, name: str, lines: int = 20) -> str:
    path = workdir / "logs" / f"{name}.log"
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def running(pid: int) -> bool:
    """Is ``pid`` running? A zombie is not: it has exited and only waits to be reaped.

    Processes the lab detaches outlive their starter and are reaped by PID 1,
    which on these machines takes a second or two; waiting for that made every
    ``down`` slow.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    state = stat.rsplit(")", 1)[1].split()[0]
    if state in {"Z", "X"}:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # ours: reap it now
        return False
    return True


def stop_pid(pid: int, *, timeout: float = 10.0, sig: int = signal.SIGTERM) -> None:
    """Signal the process group led by ``pid`` (spawn starts a new session), then kill it."""
    for send in (os.killpg, os.kill):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            send(pid, sig)
    deadline = time.monotonic() + timeout
    while running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if running(pid):
        for send in (os.killpg, os.kill):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                send(pid, signal.SIGKILL)
        while running(pid) and time.monotonic() < deadline + 5:
            time.sleep(0.05)


def stop_spawned(workdir: Path, name: str) -> None:
    """Stop the process ``spawn`` recorded as ``name``; safe when there is none."""
    pidfile = workdir / "pids" / name
    with contextlib.suppress(ValueError, FileNotFoundError):
        stop_pid(int(pidfile.read_text().strip()))
    pidfile.unlink(missing_ok=True)


def serve_python(name: str, module: str, workdir: Path, args: Sequence[str], what: str) -> int:
    """``python -m module --port PORT *args`` on a free loopback port, once it listens: the port."""
    port = free_port()
    proc = spawn(name, [sys.executable, "-m", module, "--port", str(port), *args], workdir, cwd=REPO)

    def answers() -> bool:
        if proc.poll() is not None:
            raise LabUnavailable(f"{what} exited: {log_tail(workdir, name)}")
        return port_open("127.0.0.1", port)

    wait_until(answers, timeout=30, what=what)
    return port


def stop_recorded(workdir: Path, *, timeout: float = 10.0) -> None:
    """Stop every process ``spawn`` recorded under ``workdir``, newest first."""
    pids_dir = workdir / "pids"
    if not pids_dir.is_dir():
        return
    for pidfile in sorted(pids_dir.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True):
        with contextlib.suppress(ValueError, FileNotFoundError):
            stop_pid(int(pidfile.read_text().strip()), timeout=timeout)
        pidfile.unlink(missing_ok=True)


def build_go(source: Path, name: str) -> Path:
    """Build a Go ``main`` against Debian's govmomi in GOPATH mode (lab notes) into
    ``CACHE/NAME/NAME``, unless the binary there came from this source and this Go.

    Parallel test sessions share the cache: one builds, the others wait and reuse.
    """
    go = require_binary("go", "golang-go")
    build_dir = CACHE / name
    build_dir.mkdir(parents=True, exist_ok=True)
    binary = build_dir / name
    digest = hashlib.sha256(source.read_bytes())
    digest.update(f"{os.path.realpath(go)}:{os.stat(go).st_mtime_ns}".encode())  # a Go upgrade rebuilds
    stamp = build_dir / f"{name}.sha256"
    with open(build_dir / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if binary.exists() and stamp.exists() and stamp.read_text() == digest.hexdigest():
            return binary
        env = {
            **os.environ,
            "GO111MODULE": "off",
            "GOFLAGS": "",
            "GOPATH": f"{build_dir / 'gopath'}:/usr/share/gocode",
            "GOCACHE": str(build_dir / "gocache"),
        }
        result = subprocess.run(
            [go, "build", "-o", str(binary.with_suffix(".new")), str(source)],
            cwd=build_dir,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"building {name} failed:\n{result.stdout}{result.stderr}")
        os.replace(binary.with_suffix(".new"), binary)
        stamp.write_text(digest.hexdigest())
    return binary
