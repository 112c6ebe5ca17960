"""The live socket under abuse and faults: malformed frames get an answer, not a traceback
and 1011; a process at capacity or a channel layer that does not answer closes with 4013
("try again later", which live.js backs off on); nothing of a closed socket stays behind."""

from __future__ import annotations

import asyncio

import pytest
import websockets

from portal import consumers
from portal.live import apublish
from tests.conftest import require_services, session_cookie
from tests.lab.common import free_port
from tests.test_live import communicator


@pytest.mark.django_db(transaction=True)
def test_malformed_frames_are_answered_then_the_abuser_is_closed(client, make_user, caplog) -> None:
    user = make_user("alice")
    cookie = session_cookie(client, user)
    deep = "[" * 100_000 + "]" * 100_000

    async def scenario() -> tuple[list[dict], dict]:
        ws = communicator(cookie=cookie)
        assert (await ws.connect(timeout=10))[0]
        answers = []
        for frame in ("not json", deep, "x" * 20_000):
            await ws.send_to(text_data=frame)
            answers.append(await ws.receive_json_from(timeout=5))
        await ws.send_to(bytes_data=b"\x00\x01")
        answers.append(await ws.receive_json_from(timeout=5))
        # Still serving: a good frame after the bad ones subscribes as usual.
        await ws.send_json_to({"subscribe": [f"audit:user:{user.pk}"]})
        subscribed = await ws.receive_json_from(timeout=5)
        await apublish(f"audit:user:{user.pk}", html="<tr id='ok'></tr>")
        assert (await ws.receive_json_from(timeout=5))["html"] == "<tr id='ok'></tr>"
        for _ in range(consumers.MAX_BAD_FRAMES - len(answers)):
            await ws.send_to(text_data="{")
            await ws.receive_json_from(timeout=5)
        await ws.send_to(text_data="{")
        closed = await ws.receive_output(timeout=5)
        await ws.disconnect()  # as daphne tells the consumer once the close is done
        return answers, {"subscribed": subscribed, "closed": closed}

    answers, rest = asyncio.run(scenario())
    assert [set(a) for a in answers] == [{"error"}] * 4
    assert (
        "JSON" in answers[0]["error"] and "at most" in answers[2]["error"] and "binary" in answers[3]["error"]
    )
    assert rest["subscribed"]["subscribed"] == [f"audit:user:{user.pk}"]
    assert rest["closed"] == {"type": "websocket.close", "code": consumers.CLOSE_POLICY}
    assert "Traceback" not in caplog.text
    assert sum("malformed websocket frame" in r.getMessage() for r in caplog.records) <= 1


@pytest.mark.django_db(transaction=True)
def test_over_capacity_a_socket_is_told_to_try_again_later(client, make_user, monkeypatch) -> None:
    cookie = session_cookie(client, make_user("alice"))
    monkeypatch.setattr(consumers, "MAX_SOCKETS", consumers._open_sockets + 1)

    async def scenario() -> tuple[dict, bool]:
        first = communicator(cookie=cookie)
        assert (await first.connect(timeout=10))[0]
        second = communicator(cookie=cookie)
        assert (await second.connect(timeout=10))[0]
        told = await second.receive_output(timeout=5)
        await first.disconnect()
        # The first one's place is free again.
        third = communicator(cookie=cookie)
        assert (await third.connect(timeout=10))[0]
        await third.send_json_to({"subscribe": []})
        answered = "subscribed" in await third.receive_json_from(timeout=5)
        await third.disconnect()
        return told, answered

    told, answered = asyncio.run(scenario())
    assert told == {"type": "websocket.close", "code": consumers.CLOSE_TRY_LATER}
    assert answered


def test_redis_down_closes_sockets_with_try_again_later(daphne_factory, client, make_user) -> None:
    """A real daphne whose Redis does not answer: the handshake succeeds (the page is
    served), the subscription cannot, and the socket closes with "try again later" for live.js."""
    require_services()
    cookie = session_cookie(client, make_user("alice"))
    server = daphne_factory("daphne-no-redis", REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")

    async def close_code() -> int | None:
        headers = {"Origin": server.url, "Cookie": f"sessionid={cookie}"}
        async with websockets.connect(server.ws_url, additional_headers=headers) as ws:
            with pytest.raises(websockets.ConnectionClosed):
                while True:
                    await asyncio.wait_for(ws.recv(), 20)
            return ws.close_code

    assert asyncio.run(close_code()) == consumers.CLOSE_TRY_LATER
