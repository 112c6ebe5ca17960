"""/healthz says what is up, and what is down, without a login and without secrets."""

from __future__ import annotations

import os

import pytest
import requests

from tests.conftest import require_services
from tests.lab.common import free_port


@pytest.mark.django_db
def test_all_ok_in_this_configuration(client, celery_worker_if_brokered) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200, response.json()
    assert response.json() == {"database": "ok", "channel_layer": "ok", "cache": "ok", "tasks": "ok"}
    assert "no-cache" in response["Cache-Control"]


def test_redis_down_is_named_and_answers_503(daphne_factory) -> None:
    require_services()
    dead = f"redis://:s3cret-pass@127.0.0.1:{free_port()}/0"
    server = daphne_factory("daphne-dead-redis", REDIS_URL=dead)
    response = requests.get(server.url + "/healthz", timeout=15)
    assert response.status_code == 503
    body = response.json()
    assert body["database"] == "ok"
    for part in ("channel_layer", "cache", "tasks"):
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
