"""/healthz says what is up, and what is down, without a login and without secrets."""

from __future__ import annotations

import asyncio
import json
import os

import pytest
import redis
import requests
import websockets

from tests.conftest import require_services, session_cookie
from tests.lab.common import free_port


@pytest.mark.django_db
def test_all_ok_in_this_configuration(client, celery_worker_if_brokered) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200, response.json()
    expected = {"database": "ok", "cache": "ok", "tasks": "ok"}
    if os.environ.get("REDIS_URL"):
        expected["redis"] = "ok"
    assert response.json() == expected
    assert "no-cache" in response["Cache-Control"]
    ready = client.get("/healthz/ready")
    assert (ready.status_code, ready.json()) == (200, {k: v for k, v in expected.items() if k != "tasks"})
    assert client.get("/healthz/live").json() == {"status": "ok"}


def test_ready_is_not_blocked_by_websockets_nor_by_busy_workers(daphne_factory, client, make_user) -> None:
    """A daphne with a user's idle websocket answers ready at once (it used to wait on the
    channel layer behind the consumers and answer 503), and with no worker beating
    /healthz/ready stays 200 while /healthz names the workers."""
    require_services()
    cookie = session_cookie(client, make_user("alice"))
    # A Redis database of its own, where no worker of this test run beats.
    own_redis = os.environ["REDIS_URL"].rsplit("/", 1)[0] + "/7"
    redis.Redis.from_url(own_redis).flushdb()
    server = daphne_factory("daphne-ready", PORTAL_HEALTHZ_CACHE_SECONDS="0", REDIS_URL=own_redis)

    async def probe_while_connected() -> tuple[int, int, dict]:
        headers = {"Origin": server.url, "Cookie": f"sessionid={cookie}"}
        async with websockets.connect(server.ws_url, additional_headers=headers) as ws:
            await ws.send(json.dumps({"subscribe": []}))
            await asyncio.wait_for(ws.recv(), 10)
            ready = [
                await asyncio.to_thread(requests.get, server.url + "/healthz/ready", timeout=15)
                for _ in range(3)
            ]
            full = await asyncio.to_thread(requests.get, server.url + "/healthz", timeout=15)
            return max(r.status_code for r in ready), full.status_code, full.json()

    ready_status, full_status, full = asyncio.run(probe_while_connected())
    assert ready_status == 200
    assert full_status == 503 and full["tasks"].endswith("no task worker has ever beaten"), full


def test_redis_down_is_named_and_answers_503(daphne_factory) -> None:
    require_services()
    dead = f"redis://:s3cret-pass@127.0.0.1:{free_port()}/0"
    server = daphne_factory("daphne-dead-redis", REDIS_URL=dead)
    response = requests.get(server.url + "/healthz", timeout=15)
    assert response.status_code == 503
    body = response.json()
    assert body["database"] == "ok"
    for part in ("redis", "cache", "tasks"):
        assert body[part] != "ok", body
        assert "s3cret-pass" not in body[part]
    assert "s3cret-pass" not in response.text


def test_database_down_is_named_and_answers_503(daphne_factory) -> None:
    if os.environ.get("DATABASE_URL"):
        dead = {"DATABASE_URL": f"postgres://portal:pw-secret@127.0.0.1:{free_port()}/portal"}
    else:
        dead = {"PORTAL_SQLITE_PATH": "/nonexistent-dir/portal.sqlite3"}
    server = daphne_factory("daphne-dead-db", **dead)
    response = requests.get(server.url + "/healthz", timeout=15)
    assert response.status_code == 503
    assert response.json()["database"] != "ok"
    assert "pw-secret" not in response.text
