"""The production topology under load and faults, on services of the test's own (spare
ports; never the machine's): a PostgreSQL, a Redis, two daphnes and a Celery worker;
2 x 500 signed-in websockets on the audit topic. Sign-ins through the daphnes publish
events; Redis, PostgreSQL and the worker are each stopped and started again, and at the
end one daphne is killed. Asserted:
every event reaches every socket, every socket survives the faults (and is told to
re-read after Redis), no request fails once a service is back, /healthz names what is
down meanwhile, the surviving daphne's sockets are unaffected by the other's death, and
the audit trail holds every sign-in."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Callable

import psycopg
import pytest
import requests
import websockets

from tests.conftest import REPO, daphne_env, require_services, start_daphne, stop_daphne
from tests.faults.postgres_server import PostgresServer
from tests.faults.redis_server import RedisServer
from tests.lab.common import wait_until
from tests.signin import migrate_with_admin, signed_in

CLIENTS_PER_DAPHNE = 500
PASSWORD = "an admin password"
#: Work for the worker and the watch, made once PostgreSQL is back: a VM action queued now
#: (the worker runs it: its vCenter is disabled, so it fails at once, in the database) and
#: one queued an hour ago that no worker took (the watch's sweep fails it).
NEW_WORK = """
from datetime import timedelta
from django.utils import timezone
from hosts.models import VCenter, VirtualMachine, VmTask
from hosts.vsphere import tasks
from portal import queueing
vc = VCenter.objects.create(name="vc", url="https://127.0.0.1:9", username="u", password="p", enabled=False)
vm = VirtualMachine.objects.create(vcenter=vc, moref="vm-1", name="vm-1")
stuck = VmTask.objects.create(vm=vm, action="power_on")
VmTask.objects.filter(pk=stuck.pk).update(started=timezone.now() - timedelta(hours=1))
fresh = VmTask.objects.create(vm=vm, action="power_on")
queueing.enqueue(tasks.run_vm_action, fresh.pk)
print(stuck.pk, fresh.pk)
"""


def sign_in(url: str, username: str) -> requests.Session:
    return signed_in(url, username, PASSWORD)


class Crowd:
    """The sockets, and what each has received: the sign-ins seen, and resync orders."""

    def __init__(self, urls: list[str], cookie: str) -> None:
        self.urls, self.cookie = urls, cookie
        self.logins: list[int] = []
        self.resyncs: list[int] = []
        self.closed = 0
        self.sockets: list[websockets.ClientConnection] = []

    async def open(self) -> None:
        ready = [asyncio.Event() for _ in range(len(self.urls) * CLIENTS_PER_DAPHNE)]
        self.logins = [0] * len(ready)
        self.resyncs = [0] * len(ready)
        self.tasks = [asyncio.ensure_future(self._client(i, ready[i])) for i in range(len(ready))]
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in ready)), 180)

    async def _client(self, i: int, ready: asyncio.Event) -> None:
        url = self.urls[i % len(self.urls)]
        headers = {"Origin": url, "Cookie": f"sessionid={self.cookie}"}
        ws = await websockets.connect(
            url.replace("http", "ws") + "/ws/live/", additional_headers=headers, open_timeout=120
        )
        self.sockets.append(ws)
        await ws.send(json.dumps({"subscribe": ["audit:all"]}))
        try:
            async for frame in ws:
                message = json.loads(frame)
                if message.get("subscribed") == ["audit:all"]:
                    ready.set()
                elif message.get("resync"):
                    self.resyncs[i] += 1
                elif (message.get("data") or {}).get("action") == "auth.login":
                    self.logins[i] += 1
        finally:
            self.closed += 1

    async def until(self, what: str, done: Callable[[], bool], timeout: float = 60) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not done():
            if loop.time() > deadline:
                raise AssertionError(f"not within {timeout:.0f}s: {what}")
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        for ws in self.sockets:
            await ws.close()
        await asyncio.gather(*self.tasks, return_exceptions=True)


def test_load_and_faults_on_the_production_topology(tmp_path) -> None:
    require_services()
    pg, redis_server = PostgresServer(), RedisServer(tmp_path)
    daphnes, worker, watch = [], None, None
    try:
        pg.init()
        pg.start()
        redis_server.start()
        own = {"DATABASE_URL": pg.url, "REDIS_URL": redis_server.url, "PORTAL_HEALTHZ_CACHE_SECONDS": "0"}
        env = daphne_env(**own, PORTAL_ADMIN_PASSWORD=PASSWORD)
        migrate_with_admin(env)
        daphnes = [start_daphne(tmp_path, f"daphne-{i}", **own) for i in range(2)]

        def start_worker() -> subprocess.Popen[bytes]:
            return subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "portal",
                    "worker",
                    "--pool=solo",
                    "--loglevel=WARNING",
                ],
                cwd=REPO,
                env=env,
                stdout=(tmp_path / "worker.log").open("ab"),
                stderr=subprocess.STDOUT,
            )

        def health(i: int = 0) -> dict:
            return requests.get(daphnes[i].url + "/healthz", timeout=30).json()

        worker = start_worker()
        watch = subprocess.Popen(
            [sys.executable, "manage.py", "watch", "--shard", "1/1"],
            cwd=REPO,
            env={**env, "PORTAL_STALE_WORK_INTERVAL": "1"},
            stdout=(tmp_path / "watch.log").open("ab"),
            stderr=subprocess.STDOUT,
        )
        wait_until(lambda: health()["tasks"] == "ok", timeout=60, what="the worker's heartbeat")
        a, b = (d.url for d in daphnes)

        def new_work() -> tuple[int, int]:
            made = subprocess.run(
                [sys.executable, "manage.py", "shell", "-c", NEW_WORK],
                cwd=REPO, env=env, check=True, timeout=120, capture_output=True, text=True,
            )  # fmt: skip
            stuck, fresh = made.stdout.split()[-2:]
            return int(stuck), int(fresh)

        def vm_tasks(ids: tuple[int, int]) -> list[tuple[str, str]]:
            with psycopg.connect(pg.url) as conn:
                rows = conn.execute(
                    "SELECT state, error FROM hosts_vmtask WHERE id = ANY(%s) ORDER BY id", [list(ids)]
                ).fetchall()
            return [(str(state), str(error)) for state, error in rows]

        cookie = sign_in(a, "admin").cookies["sessionid"]
        sign_ins = 1

        async def scenario() -> dict:
            nonlocal sign_ins
            crowd = Crowd([a, b], cookie)
            await crowd.open()
            everyone = len(crowd.logins)

            async def sign_in_and_wait(url: str) -> None:
                nonlocal sign_ins
                await asyncio.to_thread(sign_in, url, "admin")
                sign_ins += 1
                want = sign_ins - 1  # the crowd connected after the first
                await crowd.until(f"sign-in {want} on every socket", lambda: min(crowd.logins) >= want)

            for url in (a, b, a):
                await sign_in_and_wait(url)

            redis_server.stop()
            redis_down = await asyncio.to_thread(
                wait_until,
                lambda: (h := health(1))["redis"] != "ok" and h,
                timeout=30,
                what="healthz naming Redis",
            )
            redis_server.start()
            await crowd.until("every socket told to re-read", lambda: min(crowd.resyncs) >= 1)
            await asyncio.to_thread(
                wait_until, lambda: health()["redis"] == "ok", timeout=30, what="Redis ready"
            )
            await sign_in_and_wait(b)

            pg.stop()
            pg_down = await asyncio.to_thread(health)
            pg.start()
            await asyncio.to_thread(
                wait_until, lambda: health()["database"] == "ok", timeout=60, what="database back"
            )
            await sign_in_and_wait(a)
            # The worker and the watch kept their processes through the restart.
            work = await asyncio.to_thread(new_work)
            await asyncio.to_thread(
                wait_until,
                lambda: all(state == "error" for state, _ in vm_tasks(work)),
                timeout=60,
                what="the worker and the watch to finish work made after PostgreSQL came back",
            )
            after_pg = await asyncio.to_thread(vm_tasks, work)

            worker.kill()
            await asyncio.to_thread(
                wait_until, lambda: health()["tasks"] != "ok", timeout=60, what="healthz naming the worker"
            )
            closed_by_faults = crowd.closed
            logins = set(crowd.logins) == {sign_ins - 1}

            # A daphne killed outright: its sockets drop, the other's go on receiving.
            daphnes[1].process.kill()
            await crowd.until(
                "the killed daphne's sockets closed", lambda: crowd.closed >= CLIENTS_PER_DAPHNE
            )
            await asyncio.to_thread(sign_in, a, "admin")
            sign_ins += 1
            on_a = range(0, everyone, 2)  # client i is on urls[i % 2]
            await crowd.until(
                "the sign-in on the survivor's sockets",
                lambda: min(crowd.logins[i] for i in on_a) >= sign_ins - 1,
            )
            await crowd.close()
            return {
                "redis_down": redis_down,
                "pg_down": pg_down,
                "everyone": everyone,
                "closed_by_faults": closed_by_faults,
                "logins": logins,
                "after_pg": after_pg,
            }

        result = asyncio.run(scenario())
        worker = start_worker()
        wait_until(lambda: health()["tasks"] == "ok", timeout=60, what="a new worker's heartbeat")
        after = requests.get(a + "/healthz/ready", timeout=30).status_code
        with psycopg.connect(pg.url) as conn:
            audited = conn.execute(
                "SELECT count(*) FROM portal_auditentry WHERE action = 'auth.login'"
            ).fetchone()
    finally:
        for process in (worker, watch):
            if process is not None:
                process.kill()
        for server in daphnes:
            stop_daphne(server)
        redis_server.stop()
        pg.remove()
    assert result["everyone"] == 2 * CLIENTS_PER_DAPHNE
    assert result["closed_by_faults"] == 0, "a socket was closed by a fault"
    assert result["logins"], "every sign-in reached every socket"
    assert result["redis_down"]["database"] == "ok" and result["redis_down"]["redis"] != "ok"
    assert result["pg_down"]["database"] != "ok"
    (_, swept_error), (_, ran_error) = result["after_pg"]
    assert "no task worker took this" in swept_error, "the watch's sweep, after the restart"
    assert ran_error and "no task worker took this" not in ran_error, "the worker, after the restart"
    assert after == 200
    assert audited == (sign_ins,)


pytestmark = pytest.mark.timeout(600)
