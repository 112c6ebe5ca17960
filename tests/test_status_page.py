"""The Admin's status page: the services, and each worker and watch shard by its heartbeat."""

from __future__ import annotations

import os

import pytest

from portal import heartbeats


@pytest.mark.django_db
def test_only_admins_see_the_status_page(client, make_user) -> None:
    client.force_login(make_user("viewer"))
    assert client.get("/status/").status_code == 403
    client.force_login(make_user("root", admin=True))
    page = client.get("/status/")
    assert page.status_code == 200
    assert b"database" in page.content and b"Status" in page.content


@pytest.mark.django_db
def test_a_worker_that_stops_beating_is_shown_silent(client, make_user, monkeypatch) -> None:
    if not os.environ.get("REDIS_URL"):
        pytest.skip("heartbeats live in Redis (the embedded default has no worker process)")
    monkeypatch.setattr(heartbeats, "KEY", "portal:heartbeats:test-status-page")
    heartbeats.beat("worker:alive@test")
    heartbeats.beat("watch:1/2")
    heartbeats.beat("worker:gone@test")
    from portal import redis_client

    r = redis_client.client()
    assert r is not None
    r.hset(heartbeats.KEY, "worker:gone@test", "1")  # beat long ago, at the epoch's first second
    try:
        client.force_login(make_user("root", admin=True))
        html = client.get("/status/").content.decode()
        found = {b.name: b.alive for b in heartbeats.beats()}
    finally:
        r.delete(heartbeats.KEY)
    assert found == {"worker:alive@test": True, "watch:1/2": True}  # a day-old beat is forgotten
    assert "worker:alive@test" in html and "Watch shard" in html and "Alive" in html
