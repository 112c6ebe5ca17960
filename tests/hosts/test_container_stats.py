"""A running container's CPU and memory, streamed over the websocket from the engine's stats."""

from __future__ import annotations

import asyncio
from contextlib import closing
from typing import Any

import pytest

from hosts.models import Host
from tests.conftest import session_cookie
from tests.hosts.conftest import trusted_host
from tests.lab import engines
from tests.test_live import communicator

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.lab]


@pytest.fixture
def host(project, tls_engine, no_env_ca, celery_worker_if_brokered) -> Host:  # type: ignore[no-untyped-def]
    return trusted_host(tls_engine, project)


def _id(tls_engine: dict[str, Any], name: str) -> str:
    with closing(engines.connect(tls_engine)) as sdk:
        return sdk.containers.get(name).id


async def _samples(cookie: str, topic: str, wanted: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    ws = communicator(cookie=cookie)
    assert (await ws.connect(timeout=10))[0]
    await ws.send_json_to({"subscribe": [topic]})
    reply = await ws.receive_json_from(timeout=5)
    samples: list[dict[str, Any]] = []
    if reply["subscribed"]:
        while len(samples) < wanted:
            data = (await ws.receive_json_from(timeout=15))["data"]
            assert "error" not in data and "ended" not in data, data
            samples.append(data)
    await ws.disconnect()
    return reply, samples


@pytest.mark.timeout(90)
def test_stats_stream_cpu_and_memory_to_members_only(client, people, host, tls_engine, project) -> None:
    topic = f"project:{project.pk}:host:{host.pk}:container:{_id(tls_engine, 'web')}:stats"

    reply, samples = asyncio.run(_samples(session_cookie(client, people["viewer"]), topic, 3))
    assert reply["subscribed"] == [topic]
    for sample in samples:
        assert set(sample) == {"cpu_percent", "memory_bytes", "memory_limit"}
        assert sample["cpu_percent"] >= 0
        assert 0 < sample["memory_bytes"] <= sample["memory_limit"]

    reply, samples = asyncio.run(_samples(session_cookie(client, people["outsider"]), topic, 3))
    assert reply["subscribed"] == [] and samples == []


@pytest.mark.timeout(60)
def test_stats_of_a_container_in_another_project_are_refused(
    client, people, host, tls_engine, other_project
) -> None:
    # The right host and container, named under a project the host is not in.
    topic = f"project:{other_project.pk}:host:{host.pk}:container:{_id(tls_engine, 'web')}:stats"
    reply, samples = asyncio.run(_samples(session_cookie(client, people["viewer"]), topic, 1))
    assert reply["subscribed"] == [] and samples == []
