"""No missed events: an event published after a page was rendered but before its socket
subscribed, or while it was reconnecting, is replayed on subscribing; not twice; and a
page asking for what is no longer kept is told to re-read."""

from __future__ import annotations

import asyncio

import pytest

from portal import replay
from portal.live import position_now, publish
from tests.conftest import session_cookie
from tests.test_live import communicator


@pytest.fixture
def topic(make_user, client):  # type: ignore[no-untyped-def]
    user = make_user("alice")
    yield f"audit:user:{user.pk}", session_cookie(client, user)


def subscribe_and_read(
    cookie: str, message: dict, *, publish_live: tuple[str, str] | None = None
) -> list[dict]:
    async def scenario() -> list[dict]:
        ws = communicator(cookie=cookie)
        assert (await ws.connect(timeout=10))[0]
        await ws.send_json_to(message)
        got = [await ws.receive_json_from(timeout=5)]
        if publish_live:
            await asyncio.to_thread(publish, publish_live[0], html=publish_live[1])
        while not await ws.receive_nothing(timeout=0.3):
            got.append(await ws.receive_json_from(timeout=5))
        await ws.disconnect()
        return got

    return asyncio.run(scenario())


@pytest.mark.django_db(transaction=True)
def test_an_event_between_render_and_subscribe_is_replayed_once(topic) -> None:
    name, cookie = topic
    rendered_at = str(position_now()["live_since"])
    publish(name, html="<tr id='missed'>while the page loaded</tr>")
    got = subscribe_and_read(
        cookie,
        {"subscribe": [name], "since": {name: rendered_at}},
        publish_live=(name, "<tr id='live'>later</tr>"),
    )
    assert got[0] == {"subscribed": [name], "refused": []}
    assert [m["html"] for m in got[1:]] == [
        "<tr id='missed'>while the page loaded</tr>",
        "<tr id='live'>later</tr>",
    ]
    # Reconnecting from the last position seen: nothing is sent again.
    last = got[-1]["seq"]
    assert subscribe_and_read(cookie, {"subscribe": [name], "since": {name: last}}) == [got[0]]


@pytest.mark.django_db(transaction=True)
def test_without_a_position_nothing_is_replayed(topic) -> None:
    name, cookie = topic
    publish(name, html="<tr id='old'></tr>")
    assert subscribe_and_read(cookie, {"subscribe": [name]}) == [{"subscribed": [name], "refused": []}]
    forged = {"subscribe": [name], "since": {name: "0-0; FLUSHALL", "audit:all": "0-0"}}
    assert subscribe_and_read(cookie, forged) == [{"subscribed": [name], "refused": []}]


@pytest.mark.django_db(transaction=True)
def test_a_gap_no_longer_kept_asks_the_page_to_reread(topic, monkeypatch) -> None:
    name, cookie = topic
    rendered_at = str(position_now()["live_since"])
    monkeypatch.setattr(replay, "KEEP", 3)
    for i in range(6):
        publish(name, html=f"<tr id='r{i}'></tr>")
    got = subscribe_and_read(cookie, {"subscribe": [name], "since": {name: rendered_at}})
    assert got == [{"subscribed": [name], "refused": []}, {"resync": True}]


@pytest.mark.django_db(transaction=True)
def test_another_users_topic_is_never_replayed(topic, make_user, client) -> None:
    name, _cookie = topic
    rendered_at = str(position_now()["live_since"])
    publish(name, html="<tr id='private'>alice's</tr>")
    mallory = session_cookie(client, make_user("mallory"))
    got = subscribe_and_read(mallory, {"subscribe": [name], "since": {name: rendered_at}})
    assert got == [{"subscribed": [], "refused": [name]}]
