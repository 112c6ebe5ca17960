"""Shared fixtures: users and roles, a real daphne serving the test database."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.lab.common import free_port, wait_until

REPO = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery staple"
# The lab's webhook receivers listen on loopback, which a webhook may not reach unless an
# Admin allows it (alerts.targets): allowed for this process and the daphnes and workers
# the tests start (they inherit the environment).
os.environ.setdefault("PORTAL_ALERT_ALLOWED_NETWORKS", "127.0.0.0/8")
# A patched lab host that does not come back is given up on after this (the lab's reboots take
# seconds; the default, ten minutes, is for real hosts).
os.environ.setdefault("PORTAL_PATCH_REBOOT_TIMEOUT", "20")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # What needs the lab's real peers: everything under tests/lab/, and any test
    # that asks for one of its fixtures (tests.lab.fixtures: lab_*).
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        if "/tests/lab/" in str(item.path) or any(name.startswith("lab_") for name in fixtures):
            item.add_marker(pytest.mark.lab)


def require_services() -> None:
    """Skip a test that needs Redis, or fail it where services are required (CI)."""
    if not os.environ.get("REDIS_URL"):
        if os.environ.get("PORTAL_REQUIRE_SERVICES") == "1":
            pytest.fail("REDIS_URL is not set, and PORTAL_REQUIRE_SERVICES=1")
        pytest.skip("needs Redis: set REDIS_URL")


@pytest.fixture(autouse=True)
def no_wrong_tokens_counted_yet() -> None:
    """Wrong API tokens are counted per client address in the cache, which outlives a test:
    the test client's 127.0.0.1 starts every test with none, whatever ran before it (the
    tests of that brake come from addresses of their own)."""
    from django.core.cache import cache

    from portal import throttle

    with contextlib.suppress(Exception):  # a test that stopped the cache's Redis on purpose
        cache.delete_many(throttle._keys("api-token-failures", "127.0.0.1"))


@pytest.fixture(scope="session", autouse=True)
def fast_password_hashing() -> Iterator[None]:
    """Users made in a blink (tests.passwords); signing in still checks the password."""
    from django.test import override_settings

    with override_settings(PASSWORD_HASHERS=["tests.passwords.OneIterationPbkdf2"]):
        yield


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix: None) -> None:
    """Keep an SQLite test database in a file, so a daphne subprocess can share it."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    if db["ENGINE"] == "django.db.backends.sqlite3":
        path = REPO / "var" / f"test-{os.getpid()}.sqlite3"
        db.setdefault("TEST", {})["NAME"] = str(path)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    """pytest-django's test database, and at its end the sessions still open on it ended
    first: worker threads of this process (channels' sync-to-async pool) keep theirs for
    CONN_MAX_AGE, and PostgreSQL will not drop a database anyone is connected to."""
    yield
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.fixture
def make_user(django_user_model):  # type: ignore[no-untyped-def]
    def make(username: str, *, admin: bool = False, project=None, role: str | None = None):  # type: ignore[no-untyped-def]
        from portal.models import Membership

        user = django_user_model.objects.create_user(
            username=username, password=PASSWORD, is_superuser=admin, is_staff=admin
        )
        if project is not None and role is not None:
            Membership.objects.create(user=user, project=project, role=role)
        return user

    return make


@dataclass
class Daphne:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://", 1) + "/ws/live/"

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def daphne_env(**overrides: str) -> dict[str, str]:
    """The environment for a daphne serving the test database this run uses."""
    from django.conf import settings

    env = dict(os.environ)
    db = settings.DATABASES["default"]
    if db["ENGINE"] == "django.db.backends.sqlite3":
        env["PORTAL_SQLITE_PATH"] = str(db["NAME"])
    else:
        base = os.environ["DATABASE_URL"].rsplit("/", 1)[0]
        env["DATABASE_URL"] = f"{base}/{db['NAME']}"
    env.update(overrides)
    return env


#: daphne with the watchers on its loop, as `make run` serves it (argv: bind address, port).
SERVE_WITH_WATCHERS = """
import sys
from daphne.cli import CommandLineInterface
from twisted.internet import reactor

def watchers():
    from portal.management.commands.serve import start_watchers
    start_watchers()

reactor.callWhenRunning(watchers)
CommandLineInterface().run(["-b", sys.argv[1], "-p", sys.argv[2], "portal.asgi:application"])
"""


def start_daphne(
    tmp_dir: Path,
    name: str = "daphne",
    *,
    bind: str = "127.0.0.1",
    watchers: bool = False,
    **env_overrides: str,
) -> Daphne:
    """A daphne on the test database at ``bind`` (``watchers``: with the watchers on its loop)."""
    port = free_port()
    log = tmp_dir / f"{name}.log"
    if watchers:
        argv = [sys.executable, "-c", SERVE_WITH_WATCHERS, bind, str(port)]
    else:
        argv = [sys.executable, "-m", "daphne", "-b", bind, "-p", str(port), "portal.asgi:application"]
    process = subprocess.Popen(
        argv, cwd=REPO, env=daphne_env(**env_overrides), stdout=log.open("wb"), stderr=subprocess.STDOUT
    )
    url = f"http://{bind}:{port}"

    def answers() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"daphne exited: {log.read_text(errors='replace')[-2000:]}")
        return requests.get(url + "/accounts/login/", timeout=2).status_code == 200

    wait_until(answers, timeout=60, what=f"daphne on {url}")
    return Daphne(url=url, process=process, log=log)


def stop_daphne(server: Daphne) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@pytest.fixture
def daphne_factory(transactional_db: None, tmp_path: Path) -> Iterator:  # type: ignore[type-arg]
    """Start real daphne processes on the test database; all stopped afterwards."""
    started: list[Daphne] = []

    def start(name: str = "daphne", **options: Any) -> Daphne:
        server = start_daphne(tmp_path, name, **options)
        started.append(server)
        return server

    yield start
    for server in started:
        stop_daphne(server)


def session_cookie(client, user) -> str:  # type: ignore[no-untyped-def]
    """A signed-in session for ``user``, as the sessionid cookie a browser would hold."""
    client.force_login(user)
    return client.cookies["sessionid"].value


@pytest.fixture(scope="session")
def celery_worker_if_brokered(
    django_db_setup: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """With a broker (REDIS_URL), a real `celery worker` process takes the tasks;
    on the embedded default tasks run in-process and nothing is started."""
    if not os.environ.get("REDIS_URL"):
        yield
        return
    log = tmp_path_factory.mktemp("celery") / "worker.log"
    name = f"portal-test-{os.getpid()}@localhost"
    # Guarded (tests.pool_guard): a task that leaves a database connection behind fails the test.
    # (Imported here: a plugin module imported by this conftest could not be assert-rewritten.)
    from tests import pool_guard

    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.pool_guard",
            "-A",
            "portal",
            "worker",
            "--pool=solo",
            "--loglevel=WARNING",
            "-n",
            name,
        ],
        cwd=REPO,
        env=daphne_env(PORTAL_TEST_POOL_REPORT=pool_guard.WORKER_REPORT),
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    from portal import heartbeats

    def answers() -> bool:
        """Up once its own heartbeat is recorded (how /healthz judges workers)."""
        if process.poll() is not None:
            raise RuntimeError(f"celery worker exited: {log.read_text(errors='replace')[-2000:]}")
        return any(b.name == f"worker:{name}" and b.alive for b in heartbeats.beats())

    try:
        wait_until(answers, timeout=60, what="a celery worker")
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


# The lab's peers, as fixtures for every test that needs one.
pytest_plugins = ["tests.lab.fixtures", "tests.pool_guard"]
