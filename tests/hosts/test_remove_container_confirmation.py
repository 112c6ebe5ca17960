"""Removing a container asks first, naming it as people know it: by its name and image,
its id only as secondary text. The engine is stood in for (hosts.fleet.containers)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from hosts.fleet import containers as engine_containers
from hosts.fleet import engine
from hosts.models import Host
from portal.models import Project, Role

pytestmark = pytest.mark.django_db

CONTAINER = "0123456789ab" + "c" * 52


class _Sdk:
    def close(self) -> None:
        pass


@pytest.fixture
def host(db: None) -> Host:
    project = Project.objects.create(name="Team A")
    return Host.objects.create(project=project, name="photon-01", docker_url="tcp://127.0.0.1:9")


@pytest.fixture
def browser(make_user, host: Host) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(make_user("prov", project=host.project, role=Role.PROVISIONER))
    return client


def _summary(**fields: Any) -> engine_containers.ContainerSummary:
    values: dict[str, Any] = {
        "id": CONTAINER,
        "name": "web <1>",
        "image": "lab/nginx:1.25",
        "state": "running",
        "status": "Up 5 minutes",
        "ports": [],
        "created": 0,
        "labels": {},
    }
    return engine_containers.ContainerSummary(**{**values, **fields})


def _engine(monkeypatch: pytest.MonkeyPatch, found: Any) -> None:
    def summary(sdk: Any, container_id: str) -> Any:
        if isinstance(found, Exception):
            raise found
        return found

    monkeypatch.setattr(engine, "client_for", lambda host, timeout=None: _Sdk())
    monkeypatch.setattr(engine_containers, "container_summary", summary)


def test_the_confirmation_names_the_container_and_its_image(
    browser: Client, host: Host, monkeypatch: pytest.MonkeyPatch
) -> None:
    _engine(monkeypatch, _summary())
    page = browser.get(f"/hosts/{host.pk}/containers/{CONTAINER}/remove/").content.decode()
    heading = re.search(r"<h2>(.*?)</h2>", page, re.S)
    assert heading and "web &lt;1&gt;" in heading.group(1) and CONTAINER[:12] not in heading.group(1)
    assert "<title>Remove container web &lt;1&gt;" in page
    assert "lab/nginx:1.25" in page
    assert f'<span class="container-id p7">id {CONTAINER[:12]}</span>' in page


def test_a_container_the_engine_does_not_have_is_not_found(
    browser: Client, host: Host, monkeypatch: pytest.MonkeyPatch
) -> None:
    _engine(monkeypatch, None)
    assert browser.get(f"/hosts/{host.pk}/containers/{CONTAINER}/remove/").status_code == 404


def test_an_engine_that_does_not_answer_still_lets_the_person_confirm_by_id(
    browser: Client, host: Host, monkeypatch: pytest.MonkeyPatch
) -> None:
    _engine(monkeypatch, ConnectionRefusedError("connection refused"))
    answer = browser.get(f"/hosts/{host.pk}/containers/{CONTAINER}/remove/")
    page = answer.content.decode()
    assert answer.status_code == 200 and f"Remove container {CONTAINER[:12]}?" in page
    assert "Its name could not be read" in page
