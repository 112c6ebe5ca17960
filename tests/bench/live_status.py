"""From a container's docker event to the websocket message a signed-in browser receives:
`python -m tests.bench.live_status`.

Starts a lab engine (TLS), a scratch database, and a daphne with the engines watcher inside
(as `make run` has it; with REDIS_URL set the channel layer is Redis). A websocket client
signed in as a project member subscribes to the host page's topic; the benchmark stops and
starts a container from outside the portal and compares each message's arrival with the
engine's own timestamp of the event. Prints ``events=... p50_ms=... p95_ms=...`` last.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path

ROUNDS = 20


def main() -> int:
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        os.environ.pop(name, None)
    from tests.bench._db import scratch_database
    from tests.lab import common, engines

    with tempfile.TemporaryDirectory(prefix="bench-live-", dir=common.REPO / "var") as tmp:
        workdir = Path(tmp) / "engines"
        try:
            (engine_info,) = engines.up(workdir, plain=0, tls=1)
        except (common.LabUnavailable, RuntimeError, TimeoutError) as exc:
            print(f"could not measure: {exc}", file=sys.stderr)
            return 1
        try:
            with scratch_database() as db_name:
                return measure(engine_info, db_name, Path(tmp))
        finally:
            engines.down(workdir)


def measure(engine_info: dict, db_name: str, tmp: Path) -> int:  # type: ignore[type-arg]
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.contrib.sessions.backends.db import SessionStore

    from portal.models import Membership, Project, Role
    from tests.hosts.conftest import trusted_host
    from tests.lab import common, engines

    project = Project.objects.create(name="bench")
    user = get_user_model().objects.create_user("bench", password="x")
    Membership.objects.create(user=user, project=project, role=Role.VIEWER)
    host = trusted_host(engine_info, project, "bench-host")
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
    port = common.free_port()
    log = tmp / "daphne.log"
    daphne = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "tests.hosts.watching_asgi:application",
        ],
        cwd=common.REPO,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        import requests

        common.wait_until(
            lambda: requests.get(url + "/accounts/login/", timeout=2).status_code == 200,
            timeout=60,
            what="daphne",
        )
        sdk = engines.connect(engine_info)
        with closing(sdk):
            common.wait_until(
                lambda: sdk.info()["NEventsListener"] >= 1, timeout=30, what="the watcher's stream"
            )
            latencies = asyncio.run(
                rounds(sdk, url, session.session_key, f"project:{project.pk}:host:{host.pk}")
            )
    except (TimeoutError, RuntimeError, OSError) as exc:
        print(f"could not measure: {exc}\n{log.read_text(errors='replace')[-2000:]}", file=sys.stderr)
        return 1
    finally:
        daphne.terminate()
        daphne.wait(timeout=15)
    if len(latencies) < ROUNDS:
        print(f"could not measure: only {len(latencies)} events arrived", file=sys.stderr)
        return 1
    latencies.sort()
    p95 = latencies[min(len(latencies) - 1, round(0.95 * len(latencies)) - 1)]
    print(f"events={len(latencies)} p50_ms={statistics.median(latencies):.0f} p95_ms={p95:.0f}")
    return 0


async def rounds(sdk, url: str, session_key: str, topic: str) -> list[float]:  # type: ignore[no-untyped-def]
    import websockets

    container = sdk.containers.get("worker")
    latencies: list[float] = []
    headers = {"Origin": url, "Cookie": f"sessionid={session_key}"}
    async with websockets.connect(url.replace("http", "ws") + "/ws/live/", additional_headers=headers) as ws:
        await ws.send(json.dumps({"subscribe": [topic]}))
        reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if reply.get("subscribed") != [topic]:
            raise RuntimeError(f"subscription refused: {reply}")
        for i in range(ROUNDS):
            want = "exited" if i % 2 == 0 else "running"
            since = time.time() - 1
            if want == "exited":
                await asyncio.to_thread(container.stop, timeout=1)
            else:
                await asyncio.to_thread(container.start)
            deadline = time.monotonic() + 10
            while True:
                message = json.loads(await asyncio.wait_for(ws.recv(), max(0.1, deadline - time.monotonic())))
                received = time.time_ns()
                data = message.get("data") or {}
                if data.get("container") == container.id and data.get("state") == want:
                    break
            action = "die" if want == "exited" else "start"
            events = await asyncio.to_thread(_events, sdk, container.id, action, since)
            latencies.append((received - events[-1]["timeNano"]) / 1e6)
    return latencies


def _events(sdk, container_id: str, action: str, since: float) -> list[dict]:  # type: ignore[no-untyped-def, type-arg]
    stream = sdk.api.events(
        since=int(since),
        until=int(time.time()) + 1,
        decode=True,
        filters={"container": container_id, "event": action},
    )
    return list(stream)


if __name__ == "__main__":
    sys.exit(main())
