"""Docker registries for the lab: Debian's docker-registry (distribution 2.8.2), seeded.

``up(workdir)`` starts three on 127.0.0.1: anonymous (deletes enabled), Basic
(htpasswd, bcrypt; deletes disabled) and token auth through
:mod:`tests.lab.token_issuer` (deletes enabled, like Harbor).  Each holds the seed from :mod:`tests.lab.seed`:
pushing thousands of manifests takes 8-20 s here, so it is pushed once into a
storage tree under ``CACHE`` keyed by seed.py's text and the options, and each
registry's storage is an overlay on that tree (its own writes land in its own
upper directory), which makes a seeded start about 0.1 s.

Building blocks for other peers (the Harbor emulator): :func:`start_registry`
starts one more registry of any auth kind (optionally behind someone else's
token realm), :func:`stop_registry` stops one, :func:`seeded_storage` gives the
cached tree.

Layout under ``workdir``: ``registries/NAME/`` (config.yml, htpasswd, storage/
(the overlay mount), upper/, work/, info.json), ``token-issuer/`` (keys, users.json, info.json), pids
``registry-NAME`` and ``token-issuer``, logs of the same names.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import requests

from tests.lab import common, seed, token_issuer

Auth = Literal["none", "basic", "token"]
SERVICE = "photon-lab-registry"
ISSUER = "photon-lab-token-issuer"
DEFAULT_USER = "portal"
PID_PREFIX = "registry-"
ISSUER_NAME = "token-issuer"
START_TIMEOUT = 20.0


@dataclass(frozen=True)
class TokenAuth:
    """Where a token registry sends clients, and whose signatures it trusts."""

    realm: str
    rootcertbundle: str
    service: str = SERVICE
    issuer: str = ISSUER


# -- processes ----------------------------------------------------------------------------------


def _registry_binary() -> str:
    return common.require_binary("docker-registry", "docker-registry")


def _config(storage: Path, port: int, *, delete: bool, auth: dict[str, object] | None) -> str:
    # Written as JSON: YAML is a superset, and no YAML library is needed to write it.
    config: dict[str, object] = {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": True}, "fields": {"service": "registry"}},
        "storage": {
            "filesystem": {"rootdirectory": str(storage)},
            "cache": {"blobdescriptor": "inmemory"},
            "delete": {"enabled": delete},
            "maintenance": {"uploadpurging": {"enabled": False}},
        },
        "http": {
            "addr": f"127.0.0.1:{port}",
            "secret": secrets.token_hex(16),
            "headers": {"X-Content-Type-Options": ["nosniff"]},
        },
    }
    if auth:
        config["auth"] = auth
    return json.dumps(config, indent=2)


def _answers(url: str) -> bool:
    # 200 without auth, 401 with: either way the HTTP API is up.
    return requests.get(f"{url}/v2/", timeout=2).status_code in (200, 401)


def _wait_http(workdir: Path, name: str, url: str, proc: subprocess.Popen[bytes]) -> None:
    def ready() -> bool:
        if proc.poll() is not None:
            raise common.LabUnavailable(
                f"{name} exited with {proc.returncode}: {common.log_tail(workdir, name)}"
            )
        return _answers(url)

    try:
        common.wait_until(ready, timeout=START_TIMEOUT, what=f"{name} at {url}")
    except TimeoutError as exc:
        raise TimeoutError(f"{exc}\n{common.log_tail(workdir, name)}") from exc


def _htpasswd(user: str, password: str) -> str:
    binary = common.require_binary("htpasswd", "apache2-utils")
    result = subprocess.run(
        [binary, "-Bbn", user, password], check=True, capture_output=True, text=True, timeout=30
    )
    return result.stdout.strip() + "\n"


def start_token_issuer(workdir: Path, users: dict[str, str]) -> dict[str, str]:
    """Start the issuer for ``workdir`` (once; later calls only add ``users``) and return its info."""
    directory = workdir / ISSUER_NAME
    # Several token registries may start at once: one issuer, one key set.
    with _locked(directory / ".lock"):
        return _start_token_issuer(workdir, directory, users)


def _start_token_issuer(workdir: Path, directory: Path, users: dict[str, str]) -> dict[str, str]:
    info_path = directory / "info.json"
    root = token_issuer.ensure_keys(directory)
    token_issuer.write_users(directory, users)
    if info_path.exists():
        info = json.loads(info_path.read_text())
        with contextlib.suppress(requests.RequestException):
            if requests.get(info["url"] + token_issuer.TOKEN_PATH, timeout=2).status_code == 400:
                return info
    port = common.free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "-m", "tests.lab.token_issuer", "--dir", str(directory), "--port", str(port)]
    proc = common.spawn(ISSUER_NAME, [*argv, "--issuer", ISSUER], workdir, cwd=common.REPO)

    def ready() -> bool:
        if proc.poll() is not None:
            raise common.LabUnavailable(f"token issuer exited: {common.log_tail(workdir, ISSUER_NAME)}")
        # Without ?service= it answers 400: enough to know it serves.
        return requests.get(url + token_issuer.TOKEN_PATH, timeout=2).status_code == 400

    common.wait_until(ready, timeout=START_TIMEOUT, what=f"token issuer at {url}")
    info = {
        "url": url,
        "realm": url + token_issuer.TOKEN_PATH,
        "service": SERVICE,
        "issuer": ISSUER,
        "rootcertbundle": str(root),
    }
    info_path.write_text(json.dumps(info, indent=2))
    return info


def start_registry(
    workdir: Path,
    name: str,
    *,
    auth: Auth = "none",
    delete: bool = False,
    repos: int | None = seed.DEFAULT_REPOS,
    user: str = DEFAULT_USER,
    password: str | None = None,
    token: TokenAuth | None = None,
) -> dict[str, object]:
    """Start one registry named ``name`` (a path-safe word) and wait until it answers.

    ``repos=None`` starts it empty.  For ``auth="token"`` without ``token`` the
    workdir's own issuer is started (or reused) and taught ``user``; pass
    ``token`` to trust another realm (the Harbor emulator's ``/service/token``).
    """
    common.require_root()
    binary = _registry_binary()
    home = workdir / "registries" / name
    if home.exists():
        stop_registry(workdir, name)
    storage = _prepare_storage(home, repos)

    if auth == "none":
        password = None
    elif password is None:
        password = secrets.token_urlsafe(12)
    auth_config: dict[str, object] | None = None
    info: dict[str, object] = {}
    if auth == "basic":
        assert password is not None
        (home / "htpasswd").write_text(_htpasswd(user, password))
        auth_config = {"htpasswd": {"realm": "photon-lab", "path": str(home / "htpasswd")}}
    elif auth == "token":
        assert password is not None
        if token is None:
            issued = start_token_issuer(workdir, {user: password})
            token = TokenAuth(issued["realm"], issued["rootcertbundle"], issued["service"], issued["issuer"])
        auth_config = {
            "token": {
                "realm": token.realm,
                "service": token.service,
                "issuer": token.issuer,
                "rootcertbundle": token.rootcertbundle,
            }
        }
        info = {
            "realm": token.realm,
            "service": token.service,
            "issuer": token.issuer,
            "rootcertbundle": token.rootcertbundle,
        }

    port = common.free_port()
    url = f"http://127.0.0.1:{port}"
    config = home / "config.yml"
    config.write_text(_config(storage, port, delete=delete, auth=auth_config))
    proc = common.spawn(PID_PREFIX + name, [binary, "serve", str(config)], workdir)
    _wait_http(workdir, PID_PREFIX + name, url, proc)
    result: dict[str, object] = {
        "kind": "distribution",
        "name": name,
        "url": url,
        "auth": auth,
        "user": user if auth != "none" else None,
        "password": password,
        "delete_enabled": delete,
        "storage": str(storage),
        **info,
    }
    (home / "info.json").write_text(json.dumps(result, indent=2))
    return result


def stop_registry(workdir: Path, name: str) -> None:
    pidfile = workdir / "pids" / (PID_PREFIX + name)
    with contextlib.suppress(ValueError, FileNotFoundError):
        common.stop_pid(int(pidfile.read_text().strip()))
    pidfile.unlink(missing_ok=True)
    _remove_tree(workdir / "registries" / name)
    (workdir / "logs" / f"{PID_PREFIX}{name}.log").unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        (workdir / "registries").rmdir()  # the last one out


def _prepare_storage(home: Path, repos: int | None) -> Path:
    """The registry's storage root: empty, or the seed as an overlay on the cached tree.

    The overlay makes a seeded start O(1): the seed is ~25,000 small files, and
    copying them took 1-10 s per registry on this machine's loaded disk (removing
    them as long).  The registry writes (pushes, deletes) land in ``upper``; the
    cached tree is never touched.  Where overlays can't be mounted, it is copied.
    """
    storage = home / "storage"
    storage.mkdir(parents=True)
    if repos is None:
        return storage
    seeded = seeded_storage(repos)
    upper, work = home / "upper", home / "work"
    upper.mkdir()
    work.mkdir()
    mounted = subprocess.run(
        [
            "mount",
            "-t",
            "overlay",
            "photon-lab-registry",
            "-o",
            f"lowerdir={seeded},upperdir={upper},workdir={work}",
            str(storage),
        ],
        check=False,
        capture_output=True,
        timeout=30,
    )
    if mounted.returncode != 0:
        _copy_tree(seeded, storage)
    return storage


def _mounts_under(path: Path) -> list[Path]:
    """Mount points at or below ``path``, deepest first (mountinfo escapes spaces as \\040)."""
    prefix = str(path.resolve())
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].encode().decode("unicode_escape")
        if point == prefix or point.startswith(prefix + "/"):
            points.append(Path(point))
    return sorted(points, key=lambda p: len(p.parts), reverse=True)


def _remove_tree(path: Path) -> None:
    if not path.exists():
        return
    for point in _mounts_under(path):
        subprocess.run(["umount", str(point)], check=False, capture_output=True, timeout=30)
        if os.path.ismount(point):  # still busy: detach it so the tree can go
            subprocess.run(["umount", "--lazy", str(point)], check=False, capture_output=True, timeout=30)
    shutil.rmtree(path, ignore_errors=True)


def up(workdir: Path, *, repos: int = seed.DEFAULT_REPOS) -> list[dict[str, object]]:
    """Start the anonymous, Basic and token registries, all seeded; see the module doc."""
    common.require_root()
    _registry_binary()
    common.require_binary("htpasswd", "apache2-utils")
    workdir.mkdir(parents=True, exist_ok=True)
    seeded_storage(repos)  # before anything starts, so a cold seed isn't inside a start timeout
    password = secrets.token_urlsafe(12)
    kinds: list[tuple[str, Auth, bool]] = [
        ("anonymous", "none", True),
        ("basic", "basic", False),
        ("token", "token", True),
    ]
    try:
        # In parallel: each start is mostly waiting (for a mount, a process, an HTTP answer).
        with ThreadPoolExecutor(max_workers=len(kinds)) as pool:
            futures = [
                pool.submit(
                    start_registry, workdir, name, auth=auth, delete=delete, repos=repos, password=password
                )
                for name, auth, delete in kinds
            ]
            return [future.result() for future in futures]
    except BaseException:
        down(workdir)
        raise


def down(workdir: Path) -> None:
    """Stop every registry and the issuer this module started in ``workdir``; remove their files."""
    pids = workdir / "pids"
    if pids.is_dir():
        for pidfile in pids.iterdir():
            if pidfile.name.startswith(PID_PREFIX) or pidfile.name == ISSUER_NAME:
                with contextlib.suppress(ValueError, FileNotFoundError):
                    common.stop_pid(int(pidfile.read_text().strip()))
                pidfile.unlink(missing_ok=True)
    _remove_tree(workdir / "registries")
    shutil.rmtree(workdir / ISSUER_NAME, ignore_errors=True)
    logs = workdir / "logs"
    if logs.is_dir():
        for log in logs.iterdir():
            if log.name.startswith(PID_PREFIX) or log.name == f"{ISSUER_NAME}.log":
                log.unlink(missing_ok=True)
    for directory in (logs, pids, workdir):
        with contextlib.suppress(OSError):
            directory.rmdir()  # only if nothing else lives there


# -- the seed cache -----------------------------------------------------------------------------


def _source_hash() -> str:
    # Only seed.py decides what is in the tree; editing this module must not force a re-seed.
    return hashlib.sha256(Path(seed.__file__ or "").read_bytes()).hexdigest()[:12]


def _cache_dir() -> Path:
    return common.CACHE / "registry-seed"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def seeded_storage(repos: int = seed.DEFAULT_REPOS, many_tags: int = seed.DEFAULT_MANY_TAGS) -> Path:
    """The cached storage tree holding the seed, pushed now if the seed or its options changed."""
    source = _source_hash()
    key = f"{source}-r{repos}-t{many_tags}"
    cache = _cache_dir()
    done = cache / key / "storage"
    if (cache / key / "seed.json").exists():
        return done
    with _locked(cache / ".lock"):
        if (cache / key / "seed.json").exists():  # another process seeded while we waited
            return done
        in_use = Path("/proc/self/mountinfo").read_text()
        for stale in cache.iterdir():
            # A running lab's overlay may still sit on an old tree: leave those.
            if stale.is_dir() and not stale.name.startswith(source) and str(stale) not in in_use:
                shutil.rmtree(stale, ignore_errors=True)
        building = cache / f".building-{key}"
        common.stop_recorded(building)  # a seeding registry left by a crashed run
        shutil.rmtree(building, ignore_errors=True)
        started = time.monotonic()
        _push_seed(building, repos, many_tags)
        seconds = time.monotonic() - started
        description = {**seed.describe(repos, many_tags).as_json(), "seconds": round(seconds, 2)}
        (building / "seed.json").write_text(json.dumps(description, indent=2))
        shutil.rmtree(cache / key, ignore_errors=True)
        building.rename(cache / key)
    return done


def _push_seed(building: Path, repos: int, many_tags: int) -> None:
    """Push the seed into a throwaway registry whose storage is ``building/storage``."""
    common.require_root()
    binary = _registry_binary()
    (building / "storage").mkdir(parents=True)
    port = common.free_port()
    url = f"http://127.0.0.1:{port}"
    config = building / "config.yml"
    config.write_text(_config(building / "storage", port, delete=False, auth=None))
    proc = common.spawn("registry-seeding", [binary, "serve", str(config)], building)
    try:
        _wait_http(building, "registry-seeding", url, proc)
        seed.push(url, seed.plan(repos, many_tags))
    finally:
        common.stop_pid(proc.pid)
    for leftover in ("pids", "logs", "config.yml"):
        path = building / leftover
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)


def _copy_tree(source: Path, target: Path) -> None:
    """Copy the cached tree: blobs as hard links (content-addressed, never rewritten in place), the
    repositories' link files as real copies (a registry rewrites those in place)."""
    v2 = Path("docker") / "registry" / "v2"
    (target / v2).mkdir(parents=True, exist_ok=True)
    cp = ["cp", "-a"]
    if os.stat(source).st_dev == os.stat(target).st_dev:
        subprocess.run([*cp, "-l", str(source / v2 / "blobs"), str(target / v2)], check=True, timeout=120)
    else:
        subprocess.run([*cp, str(source / v2 / "blobs"), str(target / v2)], check=True, timeout=120)
    subprocess.run([*cp, str(source / v2 / "repositories"), str(target / v2)], check=True, timeout=120)
