"""A container action shows at once that it is under way: the row says "Stopping…"
(instead of its Stop and Restart buttons) from the request until the outcome's row, even
through the engine events in between (a stop's "kill" comes 10 s before its "die").

The engine is stood in for (hosts.fleet.containers); what is checked is the HTML the
person's browser receives: the request's answer and the rows published live."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client

from hosts.fleet import container_rows, engine, tasks
from hosts.fleet import containers as engine_containers
from hosts.models import Host
from portal import live
from portal.models import Project, Role
from tests.queued import record_queued

pytestmark = pytest.mark.django_db

CONTAINER = "0123456789ab" + "c" * 52


class _Engine:
    """The container as the engine has it, and the client the portal opens to it."""

    def __init__(self) -> None:
        self.state = "running"
        self.acted: list[str] = []

    def close(self) -> None:
        pass

    def summary(self, sdk: Any, container_id: str) -> engine_containers.ContainerSummary:
        return engine_containers.ContainerSummary(
            id=CONTAINER, name="web", image="lab/nginx:1.25", state=self.state, status="",
            ports=[], created=0, labels={},
        )  # fmt: skip


@pytest.fixture(autouse=True)
def _no_marks_left() -> Iterator[None]:
    """The in-flight marks live in the cache, which outlives a test's database."""
    yield
    cache.clear()


@pytest.fixture
def docker(monkeypatch: pytest.MonkeyPatch) -> _Engine:
    fake = _Engine()
    monkeypatch.setattr(engine, "client_for", lambda host, timeout=None: fake)
    monkeypatch.setattr(engine_containers, "container_summary", fake.summary)
    monkeypatch.setattr(engine_containers, "counts", lambda sdk: (1, 1))
    monkeypatch.setattr(engine_containers, "act", lambda sdk, container_id, action: fake.acted.append(action))
    monkeypatch.setattr(engine_containers, "list_containers", lambda sdk: [fake.summary(sdk, CONTAINER)])
    monkeypatch.setattr(engine_containers, "recent_events", lambda sdk: [])
    return fake


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The container rows published live (not the host's summary that follows each)."""
    rows: list[str] = []

    def publish(topic: str, html: str = "", data: Any = None) -> None:
        if 'class="container-row' in html:
            rows.append(html)

    monkeypatch.setattr(live, "publish", publish)
    return rows


@pytest.fixture
def host(db: None) -> Host:
    project = Project.objects.create(name="Team A")
    return Host.objects.create(project=project, name="photon-01", docker_url="tcp://127.0.0.1:9")


@pytest.fixture
def browser(make_user, host: Host) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(make_user("prov", project=host.project, role=Role.PROVISIONER))
    return client


def test_a_stop_shows_stopping_from_the_request_to_its_outcome(
    browser: Client, host: Host, docker: _Engine, published: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    queued = record_queued(monkeypatch, lambda _name, args: args)
    answer = browser.post(f"/hosts/{host.pk}/containers/{CONTAINER}/stop/", HTTP_HX_REQUEST="true")
    html = answer.content.decode()
    assert answer.status_code == 202
    assert f'id="ctr-state-{host.pk}-{CONTAINER[:12]}"' in html and 'hx-swap-oob="true"' in html
    assert "Stopping…" in html and 'data-action="stop"' not in html and 'data-action="remove"' in html

    # The engine's "kill" event: the container still runs, the row still says Stopping…
    container_rows.publish_container(host, CONTAINER)
    assert "Stopping…" in published[-1] and 'data-state="running"' in published[-1]
    assert 'data-action="stop"' not in published[-1]

    # The task: the engine has stopped it; its row is the outcome, with Start offered again.
    docker.state = "exited"
    assert tasks.container_action(*queued[0]) == "ok"
    assert docker.acted == ["stop"]
    assert "Stopping…" not in published[-1] and 'data-state="exited"' in published[-1]
    assert 'data-action="start"' in published[-1]

    # And a page read afresh shows no action under way.
    page = browser.get(f"/hosts/{host.pk}/").content.decode()
    assert "Stopping…" not in page and 'data-action="start"' in page


def test_a_restart_under_way_shows_on_a_page_read_meanwhile(
    browser: Client, host: Host, docker: _Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    record_queued(monkeypatch)
    assert browser.post(f"/hosts/{host.pk}/containers/{CONTAINER}/restart/").status_code == 202
    page = browser.get(f"/hosts/{host.pk}/").content.decode()
    assert "Restarting…" in page and 'data-action="restart"' not in page


def test_a_refused_action_keeps_the_buttons(browser: Client, host: Host) -> None:
    Host.objects.filter(pk=host.pk).update(enabled=False)
    answer = browser.post(f"/hosts/{host.pk}/containers/{CONTAINER}/stop/", HTTP_HX_REQUEST="true")
    assert answer.status_code == 409 and answer["HX-Reswap"] == "beforeend"
    assert "Stopping…" not in answer.content.decode()
