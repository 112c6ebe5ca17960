"""A host page's live resources on a lab engine (issue 17): subscribed to the host's stats topic, the
page gets its totals and its busiest containers by CPU (a container spinning a core comes first),
read from the engine every few seconds while the page is open; the readings stay an hour in the
history the charts draw, per container and per host, and a container page's own stats stream keeps
its container's. Another project's person gets nothing."""

from __future__ import annotations

import asyncio
import uuid
from contextlib import closing
from typing import Any

import pytest
from django.urls import reverse

from hosts.stats import history
from tests.conftest import session_cookie
from tests.hosts.conftest import trusted_host
from tests.lab import engines
from tests.test_live import communicator

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True)]


async def readings(cookie: str, topic: str, wanted: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The subscription's answer, then ``wanted`` data messages of the topic."""
    ws = communicator(cookie=cookie)
    assert (await ws.connect(timeout=10))[0]
    await ws.send_json_to({"subscribe": [topic]})
    answer = await ws.receive_json_from(timeout=10)
    got: list[dict[str, Any]] = []
    try:
        while answer["subscribed"] and len(got) < wanted:
            message = await ws.receive_json_from(timeout=30)
            if message.get("topic") == topic and message.get("data"):
                got.append(message["data"])
    finally:
        await ws.disconnect()
    return answer, got


@pytest.mark.timeout(180)
def test_the_host_page_gets_its_busiest_containers_and_the_history_keeps_them(
    client, people, project, other_project, make_user, tls_engine
) -> None:
    host = trusted_host(tls_engine, project, "photon-stats")
    busybox = next(ref for ref in tls_engine["images"] if ref.startswith("lab/busybox:"))
    tag = uuid.uuid4().hex[:6]
    with closing(engines.connect(tls_engine)) as sdk:
        busy = sdk.containers.run(
            busybox, ["sh", "-c", "while :; do :; done"], name=f"busy-{tag}", detach=True, network_mode="none"
        )
        idle = sdk.containers.run(
            busybox, engines.SERVE_CMD, name=f"idle-{tag}", detach=True, network_mode="none"
        )
    try:
        for container in (busy, idle):
            history.forget(host.pk, container.id)
        history.forget(host.pk, history.HOST)
        topic = f"project:{project.pk}:host:{host.pk}:stats"

        stranger = make_user("stranger", project=other_project, role="project_admin")
        answer, got = asyncio.run(readings(session_cookie(client, stranger), topic, 1))
        assert answer == {"subscribed": [], "refused": [topic]} and got == []

        answer, got = asyncio.run(readings(session_cookie(client, people["viewer"]), topic, 2))
        assert answer["subscribed"] == [topic]
        last = got[-1]
        assert "error" not in last, last
        names = [row["name"] for row in last["top"]]
        assert names[0] == f"busy-{tag}" and f"idle-{tag}" in names, last["top"]
        assert last["top"][0]["cpu"] > 20  # a core spinning, whatever the machine's noise
        assert last["top"][0]["cpu"] > last["top"][names.index(f"idle-{tag}")]["cpu"]
        assert last["host"]["cpu"] >= last["top"][0]["cpu"] and last["running"] >= 2

        # The history kept what the page was shown, per container and for the host.
        assert history.read(host.pk, busy.id) and history.read(host.pk, history.HOST)
        client.force_login(people["viewer"])
        kept = client.get(reverse("hosts:stats_history", args=[host.pk]), {"series": busy.id}).json()[
            "samples"
        ]
        assert kept and kept[-1]["cpu"] > 20

        # A container page's own stats stream keeps its container's history too: the second
        # reading (the first with a reading before it) is kept before the page is sent it.
        history.forget(host.pk, idle.id)
        container_topic = f"project:{project.pk}:host:{host.pk}:container:{idle.id}:stats"
        asyncio.run(readings(session_cookie(client, people["viewer"]), container_topic, 2))
        assert len(history.read(host.pk, idle.id)) == 1
    finally:
        for container in (busy, idle):
            container.remove(force=True)
            history.forget(host.pk, container.id)
        history.forget(host.pk, history.HOST)


@pytest.mark.timeout(120)
def test_pages_following_one_host_share_one_reader_that_stops_with_the_last_page(
    client, people, project, tls_engine
) -> None:
    """Each open tab of a host page once read the engine on its own: now one reader per host
    per process feeds them all, and is stopped when the last of them leaves."""
    from hosts.stats import follower

    host = trusted_host(tls_engine, project, "photon-stats-shared")
    topic = f"project:{project.pk}:host:{host.pk}:stats"
    from django.test import Client

    # A browser each: signing a second person in on one client would end the first one's session.
    cookies = [session_cookie(Client(), people[role]) for role in ("viewer", "provisioner")]
    started = follower.readers_started

    async def two_pages() -> list[list[dict[str, Any]]]:
        answers = await asyncio.gather(*(readings(cookie, topic, 1) for cookie in cookies))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while host.pk in follower._shared and loop.time() < deadline:  # the pages' tasks end after they leave
            await asyncio.sleep(0.05)
        assert host.pk not in follower._shared, "the reader outlived its pages"
        return [got for _, got in answers]

    pages = asyncio.run(two_pages())
    assert all(len(got) == 1 and "error" not in got[0] for got in pages), pages
    assert follower.readers_started - started == 1
    # Both pages were sent the same reading: one round of the engine, not one per page.
    assert pages[0] == pages[1]
