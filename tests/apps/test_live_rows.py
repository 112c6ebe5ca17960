"""An application's page follows its containers: when the watcher sees one change, that one
container's row (asked of its engine with one inspect, not the whole project listed and inspected
again) goes to the application's topic, and to no other project's application of the same name.

The engine is stood in for to count its round trips; the lab test of the same reading is
tests/apps/test_engine_deploy.py (``one`` against the lab's engines)."""

from __future__ import annotations

from typing import Any

import docker.errors
import pytest

from hosts.applications import live_rows, tasks
from hosts.fleet.containers import ContainerSummary
from hosts.models import Application, Host, HostStatus
from portal import live
from portal.models import Project

pytestmark = pytest.mark.django_db

CONTAINER = "c0ffee" * 10 + "abcd"


class _Api:
    """One engine holding one container of the Compose project "shop"; every call counted."""

    def __init__(self, name: str) -> None:
        self.calls: list[str] = []
        self.name = name

    def containers(self, **_: Any) -> list[dict[str, Any]]:
        self.calls.append("containers")
        return [{"Id": CONTAINER}]

    def inspect_container(self, ref: str) -> dict[str, Any]:
        self.calls.append("inspect")
        if ref != CONTAINER:
            raise docker.errors.NotFound("no such container")
        labels = {"com.docker.compose.project": "shop", "com.docker.compose.service": "web"}
        labels["com.docker.compose.container-number"] = "2"
        return {
            "Id": CONTAINER,
            "Name": f"/{self.name}",
            "Config": {"Labels": labels},
            "State": {"Status": "running", "Health": {"Status": "healthy"}},
            "NetworkSettings": {"Ports": {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]}},
        }


def _summary(project: str) -> ContainerSummary:
    return ContainerSummary(
        id=CONTAINER, name="shop-web-2", image="nginx", state="running", status="Up", ports=[],
        created=0, labels={"com.docker.compose.project": project},
    )  # fmt: skip


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, dict[str, Any]]]:
    sent: list[tuple[str, str, dict[str, Any]]] = []
    monkeypatch.setattr(live, "publish", lambda topic, html="", data=None: sent.append((topic, html, data)))
    return sent


def test_one_container_changed_sends_its_row_after_one_inspect(project: Project, published) -> None:
    host = Host.objects.create(
        project=project, name="photon-1", docker_url="tcp://photon-1:2376", status=HostStatus.ON
    )
    shop = Application.objects.create(project=project, name="shop", source="services: {}\n")
    Application.objects.create(project=project, name="shop-old", state=Application.State.REMOVED)
    api = _Api("shop-web-2<img src=x>")
    sdk = type("Sdk", (), {"api": api})()

    live_rows.on_container(host, CONTAINER, _summary("shop"), sdk)

    assert api.calls == ["inspect"]  # not the project's list, not every container inspected
    ((topic, html, data),) = published
    assert topic == tasks.topic(shop)
    assert data == {"container": CONTAINER, "state": "running"}
    assert f'id="app-container-{CONTAINER[:12]}"' in html and "healthy" in html
    assert 'href="http://photon-1:8080/"' in html
    assert "shop-web-2&lt;img src=x&gt;" in html and "<img" not in html  # the engine's words escaped


def test_a_container_of_another_projects_application_or_gone_sends_nothing(
    project: Project, other_project: Project, published
) -> None:
    theirs = Host.objects.create(
        project=other_project, name="photon-9", docker_url="tcp://photon-9:2376", status=HostStatus.ON
    )
    Application.objects.create(project=project, name="shop", source="services: {}\n")
    api = _Api("shop-web-2")
    sdk = type("Sdk", (), {"api": api})()
    # Their host runs a Compose project called "shop" too: not our application's row.
    live_rows.on_container(theirs, CONTAINER, _summary("shop"), sdk)
    assert published == [] and api.calls == []

    mine = Host.objects.create(project=project, name="photon-1", docker_url="tcp://photon-1:2376")
    live_rows.on_container(mine, "gone" * 16, _summary("shop"), sdk)  # removed since the event
    live_rows.on_container(mine, CONTAINER, None, sdk)  # removed: the removing task sends the table
    assert published == [] and api.calls == ["inspect"]
