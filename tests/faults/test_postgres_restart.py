"""PostgreSQL restarted under a running daphne (a PostgreSQL of the test's own): while it
is away pages answer 503 "cannot reach its database", not 500; once it is back the same
daphne serves again without a restart, and no request fails on a dead pooled connection."""

from __future__ import annotations

import requests

from tests.conftest import daphne_env, require_services, start_daphne, stop_daphne
from tests.faults.postgres_server import PostgresServer
from tests.lab.common import wait_until
from tests.signin import migrate_with_admin, signed_in

PASSWORD = "an admin password"


def test_postgres_restarted_daphne_recovers_without_500s(tmp_path) -> None:
    require_services()
    own = PostgresServer()
    server = None
    try:
        own.init()
        own.start()
        env = daphne_env(
            DATABASE_URL=own.url, PORTAL_ADMIN_PASSWORD=PASSWORD, PORTAL_HEALTHZ_CACHE_SECONDS="0"
        )
        migrate_with_admin(env)
        server = start_daphne(
            tmp_path, "daphne-own-pg", DATABASE_URL=own.url, PORTAL_HEALTHZ_CACHE_SECONDS="0"
        )
        with signed_in(server.url, "admin", PASSWORD) as s:
            assert s.get(server.url + "/", timeout=10).status_code == 200
            assert s.get(server.url + "/api/hosts/", timeout=10).status_code == 200

            own.stop()
            away = s.get(server.url + "/", timeout=30)
            api_away = s.get(server.url + "/api/hosts/", timeout=30)
            ready = requests.get(server.url + "/healthz/ready", timeout=30)

            own.start()
            wait_until(
                lambda: requests.get(server.url + "/healthz/ready", timeout=15).json()["database"] == "ok",
                timeout=60,
                what="ready to see the database again",
            )
            after = [s.get(server.url + path, timeout=30).status_code for path in ("/", "/api/hosts/") * 10]
    finally:
        if server is not None:
            stop_daphne(server)
        own.remove()
    assert away.status_code == 503 and "cannot reach its database" in away.text
    assert api_away.status_code == 503 and "database" in api_away.json()["detail"]
    assert ready.status_code == 503 and ready.json()["database"] != "ok"
    assert after == [200] * 20
