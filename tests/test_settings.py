"""Misconfiguration stops the portal with one clear line, never a traceback."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.conftest import REPO
from tests.lab.common import free_port, wait_until
from tests.signin import signed_in


def manage(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def clean_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "PORTAL_DEBUG"}}
    env["PORTAL_VAR_DIR"] = str(tmp_path / "var")
    env.pop("PORTAL_SQLITE_PATH", None)
    return env


def assert_one_clear_line(result: subprocess.CompletedProcess[str], *expected: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for text in expected:
        assert text in lines[0], lines[0]


def test_no_secret_key_with_debug_off_refuses_to_start(clean_env) -> None:
    clean_env.pop("PORTAL_SECRET_KEY")
    assert_one_clear_line(manage("check", env=clean_env), "PORTAL_SECRET_KEY")


def test_unreachable_database_is_one_line(clean_env) -> None:
    clean_env["DATABASE_URL"] = f"postgres://portal:pw-secret@127.0.0.1:{free_port()}/portal"
    result = manage("serve", "--port", str(free_port()), env=clean_env)
    assert_one_clear_line(result, "cannot reach the database")
    assert "pw-secret" not in result.stderr


@pytest.mark.parametrize("url", ["mysql://u:p@localhost/db", "nonsense", "postgres://u:p@host:notaport/db"])
def test_unusable_database_url_is_one_line(clean_env, url: str) -> None:
    clean_env["DATABASE_URL"] = url
    assert_one_clear_line(manage("serve", env=clean_env), "DATABASE_URL")


def test_serve_migrates_creates_the_admin_and_answers(clean_env, tmp_path: Path) -> None:
    """What `make run` does, on an empty var/ directory: the embedded default."""
    port = free_port()
    clean_env["PORTAL_ADMIN_PASSWORD"] = "an admin password"
    log = tmp_path / "serve.log"
    process = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--port", str(port)],
        cwd=REPO,
        env=clean_env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"

        def healthy() -> requests.Response:
            if process.poll() is not None:
                raise RuntimeError(log.read_text())
            return requests.get(url + "/healthz", timeout=5)

        response = wait_until(healthy, timeout=120, what="the portal to serve /healthz")
        assert response.status_code == 200, response.text
        assert response.json() == {"database": "ok", "cache": "ok", "tasks": "ok"}
        front = requests.get(url + "/", allow_redirects=False, timeout=5)
        assert front.status_code == 302 and front.headers["Location"].startswith("/accounts/login/")
        with signed_in(url, "admin", "an admin password", timeout=5) as s:
            assert "Dashboard" in s.get(url + "/", timeout=5).text
            css = s.get(url + "/static/vendor/clr-ui/clr-ui.min.css", timeout=5)
            assert css.status_code == 200 and len(css.content) > 100_000
        assert "Created Admin 'admin'" in log.read_text()
        # Write-ahead logging: pages read while a task writes (and a commit waits for no fsync).
        with contextlib.closing(sqlite3.connect(tmp_path / "var" / "portal.sqlite3")) as db:
            assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        process.terminate()
        process.wait(timeout=15)
