"""Redis stopped, then back, under a real daphne (on a Redis of the test's own): the open
websocket survives, is told to resync (events published meanwhile were lost), and
receives what is published afterwards; /healthz/ready names Redis while it is away."""

from __future__ import annotations

import asyncio
import json

import requests
import websockets

from tests.conftest import require_services, session_cookie
from tests.faults.redis_server import RedisServer
from tests.lab.common import wait_until
from tests.test_live import sign_in_through


def test_redis_stopped_and_back_websockets_resync_and_events_flow(
    daphne_factory, client, make_user, tmp_path
) -> None:
    require_services()
    own = RedisServer(tmp_path)
    own.start()
    try:
        cookie = session_cookie(client, make_user("root", admin=True))
        make_user("bob")
        server = daphne_factory("daphne-own-redis", REDIS_URL=own.url, PORTAL_HEALTHZ_CACHE_SECONDS="0")

        def ready() -> dict:
            return requests.get(server.url + "/healthz/ready", timeout=15).json()

        async def scenario() -> tuple[dict, dict, dict]:
            headers = {"Origin": server.url, "Cookie": f"sessionid={cookie}"}
            async with websockets.connect(server.ws_url, additional_headers=headers) as ws:
                await ws.send(json.dumps({"subscribe": ["audit:all"]}))
                assert json.loads(await asyncio.wait_for(ws.recv(), 10))["subscribed"] == ["audit:all"]
                await asyncio.to_thread(own.stop)
                down = await asyncio.to_thread(
                    wait_until,
                    lambda: (r := ready())["redis"] != "ok" and r,
                    timeout=30,
                    what="ready to name Redis",
                )
                await asyncio.to_thread(own.start)
                told = json.loads(await asyncio.wait_for(ws.recv(), 30))
                await asyncio.to_thread(
                    wait_until, lambda: ready()["redis"] == "ok", timeout=30, what="Redis ready"
                )
                await asyncio.to_thread(sign_in_through, server.url, "bob")
                while True:
                    event = json.loads(await asyncio.wait_for(ws.recv(), 15))
                    if event.get("data", {}).get("actor") == "bob":
                        return down, told, event

        down, told, event = asyncio.run(scenario())
        assert down["database"] == "ok" and down["redis"] != "ok"
        assert told == {"resync": True}
        assert event["topic"] == "audit:all" and event["data"]["action"] == "auth.login"
    finally:
        own.stop()
