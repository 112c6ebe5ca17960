"""A host's containers through the API, against the lab's TLS engine: read, act, remove."""

from __future__ import annotations

from contextlib import closing

import pytest

from portal.models import AuditEntry
from tests.api.common import client_for
from tests.hosts.conftest import trusted_host
from tests.lab import engines
from tests.lab.common import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.lab]


def _state(tls_engine, name: str) -> str | None:  # type: ignore[no-untyped-def]
    with closing(engines.connect(tls_engine)) as sdk:
        found = [c for c in sdk.containers.list(all=True) if c.name == name]
        return found[0].status if found else None


@pytest.mark.timeout(120)
def test_containers_are_read_and_acted_on_through_the_api(  # type: ignore[no-untyped-def]
    project, people, tls_engine, no_env_ca, celery_worker_if_brokered
) -> None:
    host = trusted_host(tls_engine, project)
    viewer = client_for(people["viewer"])
    provisioner = client_for(people["provisioner"])
    base = f"/api/hosts/{host.pk}/containers/"

    listed = viewer.get(base)
    assert listed.status_code == 200, listed.content
    rows = {row["name"]: row for row in listed.json()["results"]}
    web = rows["web"]["id"]
    assert rows["web"]["state"] == "running" and listed.json()["count"] == len(rows)
    assert viewer.get(f"{base}{web}/").json()["Id"] == web
    assert viewer.post(f"{base}{web}/stop/").status_code == 403
    assert viewer.get(f"{base}{'0' * 64}/").status_code == 404

    try:
        assert provisioner.post(f"{base}{web}/stop/").status_code == 202
        wait_until(lambda: _state(tls_engine, "web") == "exited", timeout=30, what="web stopped")
        assert provisioner.post(f"{base}{web}/start/").status_code == 202
        wait_until(lambda: _state(tls_engine, "web") == "running", timeout=30, what="web started")
    finally:
        with closing(engines.connect(tls_engine)) as sdk:
            if sdk.containers.get("web").status != "running":
                sdk.containers.get("web").start()
    assert AuditEntry.objects.filter(action="container.stop", actor=people["provisioner"]).exists()

    with closing(engines.connect(tls_engine)) as sdk:
        image = next(ref for ref in tls_engine["images"] if ref.startswith("lab/busybox"))
        scratch = sdk.containers.create(image, ["true"], name="api-scratch", network_mode="none")
    assert provisioner.delete(f"{base}{scratch.id}/").status_code == 202
    wait_until(lambda: _state(tls_engine, "api-scratch") is None, timeout=30, what="api-scratch removed")
    assert AuditEntry.objects.filter(action="container.remove").exists()
