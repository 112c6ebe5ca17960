"""The lab's Harbor: :mod:`tests.lab.harbor_emulator` in front of a real, seeded registry.

The backend is an anonymous distribution registry on 127.0.0.1 with deletes
enabled (from :mod:`tests.lab.registries`); the emulator is the only way in that
checks credentials, and serves both Harbor's API and the registry at ``/v2/``
(proxied behind Harbor's token flow at ``/service/token``).

Layout under ``workdir``: ``harbor/config.json`` (users, passwords), ``harbor/info.json``,
pid and log ``harbor-emulator``, plus the backend registry ``registries/harbor-backend``
when ``up`` started it.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import sys
from pathlib import Path

import requests

from tests.lab import common

NAME = "harbor-emulator"
BACKEND_NAME = "harbor-backend"
ROBOT = "robot$portal"
#: A project-level robot (Harbor names them robot$PROJECT+NAME) that may only read team-a.
TEAM_ROBOT = "robot$team-a+reader"
START_TIMEOUT = 20.0


def _config(admin_password: str, robot_password: str, team_password: str) -> dict[str, object]:
    return {
        "public_projects": ["library"],
        "users": [
            {"name": "admin", "password": admin_password, "user_id": 1, "sysadmin": True},
            {
                "name": ROBOT,
                "password": robot_password,
                "user_id": 2,
                "projects": ["*"],
                "actions": ["read", "delete"],
            },
            {
                "name": TEAM_ROBOT,
                "password": team_password,
                "user_id": 3,
                "projects": ["team-a"],
                "actions": ["read"],
            },
        ],
    }


def up(workdir: Path, *, backend: dict[str, object] | None = None, repos: int = 50) -> dict[str, object]:
    """Start the emulator (and a seeded backend registry unless ``backend`` is given)."""
    common.require_root()
    workdir.mkdir(parents=True, exist_ok=True)
    home = workdir / "harbor"
    home.mkdir(exist_ok=True)
    try:
        if backend is None:
            from tests.lab import registries

            backend = registries.start_registry(workdir, BACKEND_NAME, auth="none", delete=True, repos=repos)
            (home / "own-backend").write_text(BACKEND_NAME)
        passwords = {k: secrets.token_urlsafe(12) for k in ("admin", "robot", "team")}
        config = _config(passwords["admin"], passwords["robot"], passwords["team"])
        if backend.get("user"):
            config["backend_user"] = backend["user"]
            config["backend_password"] = backend["password"]
        (home / "config.json").write_text(json.dumps(config, indent=2))
        (home / "config.json").chmod(0o600)
        port = common.free_port()
        url = f"http://127.0.0.1:{port}"
        argv = [
            sys.executable,
            "-m",
            "tests.lab.harbor_emulator",
            "--port",
            str(port),
            "--backend",
            str(backend["url"]),
            "--config",
            str(home / "config.json"),
            "--warm",
        ]
        proc = common.spawn(NAME, argv, workdir, cwd=common.REPO)

        def answers() -> bool:
            if proc.poll() is not None:
                raise common.LabUnavailable(f"harbor emulator exited:\n{common.log_tail(workdir, NAME)}")
            return requests.get(f"{url}/api/v2.0/ping", timeout=2).text == "Pong"

        common.wait_until(answers, timeout=START_TIMEOUT, what="the harbor emulator")
    except BaseException:
        down(workdir)
        raise
    info: dict[str, object] = {
        "kind": "harbor",
        "url": url,
        "auth": "basic",
        "user": ROBOT,
        "password": passwords["robot"],
        "admin_user": "admin",
        "admin_password": passwords["admin"],
        "team_robot_user": TEAM_ROBOT,
        "team_robot_password": passwords["team"],
        "backend_url": str(backend["url"]),
        "delete_enabled": bool(backend.get("delete_enabled", True)),
    }
    (home / "info.json").write_text(json.dumps(info, indent=2))
    return info


def down(workdir: Path) -> None:
    """Stop the emulator and the backend ``up`` started; safe to call twice or after a failed ``up``."""
    home = workdir / "harbor"
    common.stop_spawned(workdir, NAME)
    if (home / "own-backend").exists():
        from tests.lab import registries

        registries.stop_registry(workdir, BACKEND_NAME)
    shutil.rmtree(home, ignore_errors=True)
    (workdir / "logs" / f"{NAME}.log").unlink(missing_ok=True)
    for directory in (workdir / "logs", workdir / "pids", workdir / "registries", workdir):
        with contextlib.suppress(OSError):
            directory.rmdir()  # only if nothing else lives there
