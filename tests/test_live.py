"""Live events: refused to strangers, delivered to subscribers, across daphne processes."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest
import websockets
from channels.testing import WebsocketCommunicator

from portal.asgi import application
from portal.live import apublish, publish
from tests.conftest import PASSWORD, require_services, session_cookie

ORIGIN = "http://127.0.0.1"


def communicator(origin: str | None = ORIGIN, cookie: str | None = None) -> WebsocketCommunicator:
    headers = [(b"host", b"127.0.0.1")]  # as a browser sends it: the Origin must match it
    if origin:
        headers.append((b"origin", origin.encode()))
    if cookie:
        headers.append((b"cookie", f"sessionid={cookie}".encode()))
    return WebsocketCommunicator(application, "/ws/live/", headers=headers)


async def refused(ws: WebsocketCommunicator) -> bool:
    connected, _ = await ws.connect(timeout=10)
    # Ended in this loop, not cancelled when asyncio.run closes it: a consumer cancelled
    # there can leave the Redis layer's shared receive lock held, and the next loop's
    # consumers wait on it for ever (the test hung; daphne runs one loop, so only tests).
    await ws.disconnect()
    return not connected


@pytest.mark.django_db(transaction=True)
def test_anonymous_is_refused() -> None:
    assert asyncio.run(refused(communicator()))


@pytest.mark.django_db(transaction=True)
def test_foreign_or_missing_origin_is_refused_even_signed_in(client, make_user) -> None:
    cookie = session_cookie(client, make_user("alice"))
    assert not asyncio.run(refused(communicator(cookie=cookie)))  # the same cookie is fine from here
    for origin in ("http://evil.example", "http://127.0.0.1.evil.example", None):
        assert asyncio.run(refused(communicator(origin=origin, cookie=cookie))), origin


@pytest.mark.django_db(transaction=True)
def test_subscriber_gets_events_only_for_granted_topics(client, make_user) -> None:
    user = make_user("alice")
    cookie = session_cookie(client, user)

    async def scenario() -> None:
        ws = communicator(cookie=cookie)
        connected, _ = await ws.connect(timeout=10)
        assert connected
        await ws.send_json_to({"subscribe": [f"audit:user:{user.pk}", "audit:all"]})
        reply = await ws.receive_json_from(timeout=5)
        assert reply == {"subscribed": [f"audit:user:{user.pk}"], "refused": ["audit:all"]}
        await apublish("audit:all", html="<tr id='x'>admin only</tr>")
        await apublish(f"audit:user:{user.pk}", html="<tr id='y'>yours</tr>", data={"n": 1})
        event = await ws.receive_json_from(timeout=5)
        assert event.pop("seq")  # its position, for replay (tests/test_replay.py)
        assert event == {"topic": f"audit:user:{user.pk}", "html": "<tr id='y'>yours</tr>", "data": {"n": 1}}
        assert await ws.receive_nothing(timeout=0.2)
        await ws.send_json_to({"subscribe": "not-a-list"})
        assert "error" in await ws.receive_json_from(timeout=5)
        await ws.disconnect()

    asyncio.run(scenario())


def test_event_published_through_one_daphne_reaches_a_client_of_another(
    daphne_factory, client, make_user
) -> None:
    """Two daphne processes on one Redis: a sign-in served by B is audited and
    published there, and the websocket client connected to A receives it."""
    require_services()
    admin = make_user("root", admin=True)
    make_user("bob")
    cookie = session_cookie(client, admin)
    a = daphne_factory("daphne-a")
    b = daphne_factory("daphne-b")

    async def scenario() -> dict:
        headers = {"Origin": a.url, "Cookie": f"sessionid={cookie}"}
        async with websockets.connect(a.ws_url, additional_headers=headers) as ws:
            await ws.send(json.dumps({"subscribe": ["audit:all"]}))
            assert json.loads(await asyncio.wait_for(ws.recv(), 10))["subscribed"] == ["audit:all"]
            await asyncio.to_thread(sign_in_through, b.url, "bob")
            while True:
                event = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if event["data"]["action"] == "auth.login" and event["data"]["actor"] == "bob":
                    return event

    event = asyncio.run(scenario())
    assert event["topic"] == "audit:all"
    assert "bob" in event["html"] and 'data-action="auth.login"' in event["html"]


def sign_in_through(url: str, username: str) -> None:
    from tests.signin import signed_in

    signed_in(url, username, PASSWORD, timeout=10).close()


def test_a_real_daphne_refuses_websockets_without_session_or_from_another_origin(
    daphne_factory, client, make_user
) -> None:
    cookie = session_cookie(client, make_user("alice"))
    server = daphne_factory("daphne-ws")

    async def status(headers: dict[str, str]) -> int:
        try:
            async with websockets.connect(server.ws_url, additional_headers=headers):
                return 101
        except websockets.InvalidStatus as exc:
            return exc.response.status_code

    assert asyncio.run(status({"Origin": server.url})) == 403
    assert asyncio.run(status({"Origin": "http://evil.example", "Cookie": f"sessionid={cookie}"})) == 403
    assert asyncio.run(status({"Origin": server.url, "Cookie": f"sessionid={cookie}"})) == 101


@pytest.mark.django_db(transaction=True)
def test_an_event_published_from_a_task_thread_reaches_the_browser(client, make_user) -> None:
    """On the embedded default tasks run on threads of the portal process; their events
    must wake the websocket's loop, not wait for something else to (that was a bug)."""
    user = make_user("alice")
    cookie = session_cookie(client, user)

    async def scenario() -> dict:
        ws = communicator(cookie=cookie)
        assert (await ws.connect(timeout=10))[0]
        await ws.send_json_to({"subscribe": [f"audit:user:{user.pk}"]})
        await ws.receive_json_from(timeout=5)
        # A plain thread, as the in-process task pool's: nothing of this loop waits on it.
        outcome: list[bool] = []
        html = "<tr id='t'>from a task</tr>"
        task = threading.Thread(target=lambda: outcome.append(publish(f"audit:user:{user.pk}", html=html)))
        task.start()
        event = await ws.receive_json_from(timeout=3)
        task.join(timeout=5)
        assert outcome == [True]
        await ws.disconnect()
        return event

    assert asyncio.run(scenario())["html"] == "<tr id='t'>from a task</tr>"


def test_an_idle_websocket_stays_up_on_redis(daphne_factory, client, make_user) -> None:
    """redis-py 8's default 5 s read timeout killed idle consumers (channels_redis#422)."""
    require_services()
    user = make_user("alice")
    cookie = session_cookie(client, user)
    server = daphne_factory("daphne-idle")

    async def scenario() -> dict:
        headers = {"Origin": server.url, "Cookie": f"sessionid={cookie}"}
        async with websockets.connect(server.ws_url, additional_headers=headers) as ws:
            await ws.send(json.dumps({"subscribe": [f"audit:user:{user.pk}"]}))
            await asyncio.wait_for(ws.recv(), 10)
            # Nothing is published for longer than the old read timeout: no message may
            # arrive, and above all the server must not drop the connection.
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(ws.recv(), 8)
            await asyncio.to_thread(publish, f"audit:user:{user.pk}", html="<tr id='late'>still here</tr>")
            return json.loads(await asyncio.wait_for(ws.recv(), 10))

    assert asyncio.run(scenario())["html"] == "<tr id='late'>still here</tr>"
