"""What the websocket benchmarks share: a scratch portal (database, a signed-in member of a
project) served by real daphne processes on the production topology (Redis from REDIS_URL)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Portal:
    urls: list[str]
    pids: list[int]
    session_key: str
    project_id: int


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@contextmanager
def portal(daphnes: int, tmp: Path) -> Iterator[Portal]:
    """``daphnes`` daphne processes on a scratch database, and a member's session."""
    if not os.environ.get("REDIS_URL"):
        raise RuntimeError("set REDIS_URL (and DATABASE_URL): this measures the production topology")
    from tests.bench._db import scratch_database

    with scratch_database() as db_name:
        from django.conf import settings
        from django.contrib.auth import get_user_model
        from django.contrib.sessions.backends.db import SessionStore

        from portal.models import Membership, Project, Role
        from tests.lab import common

        project = Project.objects.create(name="bench")
        user = get_user_model().objects.create_user("bench", password="x")
        Membership.objects.create(user=user, project=project, role=Role.VIEWER)
        session = SessionStore()
        session["_auth_user_id"] = str(user.pk)
        session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
        session["_auth_user_hash"] = user.get_session_auth_hash()
        session.create()

        env = dict(os.environ)
        if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
            env["PORTAL_SQLITE_PATH"] = str(db_name)
        else:
            env["DATABASE_URL"] = os.environ["DATABASE_URL"].rsplit("/", 1)[0] + "/" + str(db_name)
        processes, urls = [], []
        try:
            for i in range(daphnes):
                port = common.free_port()
                log = tmp / f"daphne-{i}.log"
                processes.append(
                    subprocess.Popen(
                        [
                            sys.executable,
                            "-m",
                            "daphne",
                            "-b",
                            "127.0.0.1",
                            "-p",
                            str(port),
                            "portal.asgi:application",
                        ],
                        cwd=common.REPO,
                        env=env,
                        stdout=log.open("wb"),
                        stderr=subprocess.STDOUT,
                    )
                )
                urls.append(f"http://127.0.0.1:{port}")
            import requests

            for url in urls:
                common.wait_until(
                    lambda url=url: requests.get(url + "/healthz/live", timeout=2).status_code == 200,
                    timeout=60,
                    what=f"daphne on {url}",
                )
            yield Portal(urls, [p.pid for p in processes], session.session_key or "", project.pk)
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
