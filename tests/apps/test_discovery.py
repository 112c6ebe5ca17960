"""Compose projects started by hand on a project's hosts: listed unmanaged on the Applications page
for whoever may see the project, each engine asked once a period, one that does not answer named;
a Provisioner adopts one (an application with no template, its containers its placements), which
the portal then removes by label like any other; the refusals (issue 16).

The engines are stood in for (``hosts.fleet.engine.client_for``); the lab test runs the real
Compose CLI against a real engine (tests/apps/test_compose_cli_on_lab.py)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from hosts.applications import adoption, compose, deployments, discovery, operations, tasks
from hosts.fleet import engine
from hosts.models import Application, Host, HostStatus
from portal import live
from portal.models import AuditEntry, Project
from portal.refused import Refused
from tests.apps.lab_apps import apps_page

pytestmark = pytest.mark.django_db


def _container(project: str, service: str, number: int, image: str = "lab/busybox:1.35") -> dict[str, Any]:
    labels = {
        "com.docker.compose.project": project,
        "com.docker.compose.service": service,
        "com.docker.compose.container-number": str(number),
        "com.docker.compose.oneoff": "False",
    }
    name = f"{project}_{service}_{number}"
    return {"Id": f"id-{name}", "Names": [f"/{name}"], "Image": image, "State": "running", "Labels": labels}


def _matches(item: dict[str, Any], filters: dict[str, Any]) -> bool:
    key, _, value = str(filters.get("label", "")).partition("=")
    labels = item.get("Labels") or {}
    return not key or (key in labels and (not value or labels[key] == value))


class _Api:
    def __init__(self, engines: _Engines, url: str) -> None:
        self.engines, self.url = engines, url

    def containers(self, all: bool = False, filters: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        self.engines.asked.append(self.url)
        if self.url in self.engines.hung:
            self.engines.hung[self.url].wait(timeout=60)
        if self.url in self.engines.down:
            raise ConnectionError("connection refused")
        return [c for c in self.engines.on.get(self.url, []) if _matches(c, filters or {})]

    def networks(self, filters: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        return []

    def volumes(self, filters: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"Volumes": []}

    def remove_container(self, ref: str, force: bool = False, v: bool = False) -> None:
        self.engines.on[self.url] = [c for c in self.engines.on[self.url] if c["Id"] != ref]


class _Engines:
    """What each engine (by its URL) runs; the URLs asked, in order; the engines that are down."""

    def __init__(self) -> None:
        self.on: dict[str, list[dict[str, Any]]] = {}
        self.asked: list[str] = []
        self.down: set[str] = set()
        #: Engines that accept the connection and answer only once their event is set.
        self.hung: dict[str, threading.Event] = {}

    def client_for(self, host: Host, timeout: float | None = None) -> Any:
        sdk = type("Sdk", (), {"close": lambda self: None})()
        sdk.api = _Api(self, host.docker_url)
        return sdk


@pytest.fixture
def engines(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Engines]:
    fake = _Engines()
    monkeypatch.setattr(engine, "client_for", fake.client_for)
    monkeypatch.setattr(live, "publish", lambda topic, html="", data=None: None)
    yield fake
    # The answers are cached per host: none may reach the next test.
    discovery.forget(Host.objects.values_list("pk", flat=True))


def _host(engines: _Engines, project: Project, name: str, *containers: dict[str, Any], **fields: Any) -> Host:
    fields.setdefault("status", HostStatus.ON)
    host = Host.objects.create(project=project, name=name, docker_url=f"tcp://{name}:2376", **fields)
    engines.on[host.docker_url] = list(containers)
    return host


def _apps_page(client: Any, user: Any) -> str:
    client.force_login(user)
    return apps_page(client)


def _unmanaged(page: str) -> str:
    """The page's unmanaged section: its engines' errors and its table."""
    heading = "<h3>Unmanaged Compose projects</h3>"
    return page[page.index(heading) : page.index("<h3>Templates</h3>")] if heading in page else ""


def test_a_compose_project_started_by_hand_is_listed_unmanaged_with_its_hosts_services_and_containers(
    client, people, project, engines
) -> None:
    _host(engines, project, "photon-1", _container("handmade", "web", 1), _container("handmade", "db", 1))
    _host(engines, project, "photon-2", _container("handmade", "web", 2))
    viewer = _unmanaged(_apps_page(client, people["viewer"]))
    row = viewer[viewer.index(f'id="unmanaged-{project.pk}-handmade"') :].split("</tr>")[0]
    assert ">handmade<" in row and "Unmanaged" in row and project.name in row
    assert "photon-1, photon-2" in row and "db, web" in row and "<td>3</td>" in row
    assert "Adopt" not in row  # a Viewer sees it, only a Provisioner may adopt it
    assert 'class="btn btn-sm btn-outline adopt"' in _unmanaged(_apps_page(client, people["provisioner"]))


def test_the_portals_own_applications_are_not_unmanaged_until_removed(
    client, people, project, engines
) -> None:
    _host(engines, project, "photon-1", _container("shop", "web", 1), _container("handmade", "web", 1))
    shop = Application.objects.create(project=project, name="shop", source="services: {}", state="running")
    assert [f.name for f in discovery.unmanaged([project.pk])] == ["handmade"]
    Application.objects.filter(pk=shop.pk).update(state="removed")
    assert [f.name for f in discovery.unmanaged([project.pk])] == ["handmade", "shop"]


def test_only_the_enabled_on_hosts_of_the_users_projects_are_asked(
    client, people, project, other_project, engines
) -> None:
    _host(engines, project, "photon-1", _container("mine", "web", 1))
    _host(engines, project, "photon-off", _container("off", "web", 1), status=HostStatus.OFF)
    _host(engines, project, "photon-disabled", _container("disabled", "web", 1), enabled=False)
    _host(engines, other_project, "photon-b", _container("theirs", "web", 1))
    page = _unmanaged(_apps_page(client, people["viewer"]))
    assert "mine" in page and "theirs" not in page and "disabled" not in page and ">off<" not in page
    assert engines.asked == ["tcp://photon-1:2376"]
    # Nothing to show a person without a project.
    assert _unmanaged(_apps_page(client, people["outsider"])) == ""


def test_an_engine_that_does_not_answer_is_named_and_the_others_still_listed(
    client, people, project, engines
) -> None:
    _host(engines, project, "photon-1", _container("handmade", "web", 1))
    down = _host(engines, project, "photon-2", _container("hidden", "web", 1))
    engines.down.add(down.docker_url)
    page = _unmanaged(_apps_page(client, people["viewer"]))
    assert "Not answering: photon-2:" in page and "handmade" in page and "hidden" not in page


def test_a_host_that_hangs_is_named_once_the_deadline_has_passed(
    project, engines, monkeypatch: pytest.MonkeyPatch
) -> None:
    _host(engines, project, "photon-1", _container("handmade", "web", 1))
    hung = _host(engines, project, "photon-2", _container("late", "web", 1))
    engines.hung[hung.docker_url] = threading.Event()
    monkeypatch.setattr(discovery, "DEADLINE", 0.2)
    try:
        found = discovery.read([project.pk])
    finally:
        engines.hung[hung.docker_url].set()
    assert [f.name for f in found.found] == ["handmade"]
    assert found.errors == ["photon-2: no answer within 0.2 s"]


def test_the_applications_page_asks_no_engine_and_its_section_names_at_most_five_silent_ones(
    client, people, project, engines
) -> None:
    for i in range(7):
        engines.down.add(_host(engines, project, f"photon-{i}").docker_url)
    client.force_login(people["viewer"])
    page = client.get(reverse("hosts:apps")).content.decode()
    assert f'hx-get="{reverse("hosts:apps_unmanaged")}"' in page and engines.asked == []
    section = client.get(reverse("hosts:apps_unmanaged")).content.decode()
    assert section.count("Not answering:") == 5 and "And 2 more hosts did not answer." in section
    assert len(engines.asked) == 7


def test_each_host_is_asked_once_a_period_whatever_the_pages_asked(client, people, project, engines) -> None:
    host = _host(engines, project, "photon-1", _container("handmade", "web", 1))
    down = _host(engines, project, "photon-2")
    engines.down.add(down.docker_url)
    for _ in range(3):
        assert "handmade" in _unmanaged(_apps_page(client, people["viewer"]))
    # A silent engine too: it costs a page its timeout once a period, not every time.
    assert sorted(engines.asked) == ["tcp://photon-1:2376", "tcp://photon-2:2376"]
    discovery.forget([host.pk])
    _apps_page(client, people["viewer"])
    assert engines.asked.count("tcp://photon-1:2376") == 2


def test_a_provisioner_adopts_it_and_it_is_an_application_with_its_containers_as_placements(
    client, people, project, engines
) -> None:
    one = _host(
        engines, project, "photon-1", _container("handmade", "web", 1), _container("handmade", "db", 1)
    )
    two = _host(engines, project, "photon-2", _container("handmade", "web", 1))  # started there too
    _apps_page(client, people["provisioner"])  # the list as it was, cached
    answer = client.post(reverse("hosts:app_adopt"), {"project": project.pk, "name": "handmade"})
    application = Application.objects.get(name="handmade")
    assert answer.status_code == 302 and answer["Location"] == reverse("hosts:app", args=[application.pk])
    assert application.state == "running" and application.template is None and application.adopted
    assert application.project == project and application.created_by == people["provisioner"]
    placed = {(p.service, p.replica, p.host_id) for p in application.placements.all()}
    # Both hosts' web containers are number 1: the second gets the next replica.
    assert placed == {("db", 1, one.pk), ("web", 1, one.pk), ("web", 2, two.pk)}
    reasons = {p.reason for p in application.placements.all()}
    assert "adopted: found running as handmade_web_1" in reasons
    # Its Compose file names the images, and is one the portal reads.
    model = compose.render(application.source, {})
    assert model["services"]["web"]["image"] == "lab/busybox:1.35"
    assert model["services"]["web"]["deploy"] == {"replicas": 2}
    entry = AuditEntry.objects.get(action="app.adopt")
    assert entry.actor == people["provisioner"] and entry.project == project
    detail = client.get(answer["Location"]).content.decode()
    assert 'id="app-adopted"' in detail
    page = _apps_page(client, people["provisioner"])
    assert f'id="application-{application.pk}"' in page and "handmade" not in _unmanaged(page)
    # The portal knows its images, not their settings: it does not make more of them.
    with pytest.raises(Refused, match="was adopted"):
        operations.request_scale(people["provisioner"], application, "web", 3)
    assert application.placements.count() == 3


def test_an_adopted_application_is_removed_by_label_like_any_other(
    client, people, project, engines, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = _host(
        engines, project, "photon-1", _container("handmade", "web", 1), _container("other", "web", 1)
    )
    application = adoption.adopt(people["provisioner"], project, "handmade")
    queued: list[int] = []
    monkeypatch.setattr(tasks, "queue_remove", lambda app, volumes: queued.append(app.pk))
    deployments.request_remove(people["provisioner"], application, volumes=False)
    assert queued == [application.pk]
    assert tasks.remove_application(application.pk, False) == "ok"
    assert Application.objects.get(pk=application.pk).state == "removed"
    assert [c["Names"][0] for c in engines.on[host.docker_url]] == ["/other_web_1"]


def test_adopting_is_refused_when_the_name_is_the_portals_or_nothing_or_spans_projects(
    people, project, other_project, engines
) -> None:
    provisioner = people["provisioner"]
    _host(engines, project, "photon-1", _container("shop", "web", 1), _container("spread", "web", 1))
    _host(engines, other_project, "photon-b", _container("spread", "web", 1))
    Application.objects.create(project=project, name="shop", source="services: {}", state="running")
    with pytest.raises(Refused, match="exists already"):
        adoption.adopt(provisioner, project, "shop")
    with pytest.raises(Refused, match="No Compose project named 'nothing'") as nothing:
        adoption.adopt(provisioner, project, "nothing")
    assert nothing.value.status == 404
    with pytest.raises(Refused, match="another project"):
        adoption.adopt(provisioner, project, "spread")
    with pytest.raises(Refused, match="not a name"):
        adoption.adopt(provisioner, project, "Bad Name")
    assert not Application.objects.exclude(name="shop").exists()
    assert not AuditEntry.objects.filter(action="app.adopt").exists()


def test_adopting_waits_for_every_host_of_the_project_to_answer(people, project, engines) -> None:
    _host(engines, project, "photon-1", _container("handmade", "web", 1))
    down = _host(engines, project, "photon-2")
    engines.down.add(down.docker_url)
    with pytest.raises(Refused, match="photon-2") as refused:
        adoption.adopt(people["provisioner"], project, "handmade")
    assert refused.value.status == 502 and not Application.objects.exists()


def test_a_viewer_cannot_adopt_and_another_projects_is_not_found(
    client, people, project, other_project, engines
) -> None:
    _host(engines, project, "photon-1", _container("handmade", "web", 1))
    _host(engines, other_project, "photon-b", _container("theirs", "web", 1))
    with pytest.raises(PermissionDenied):
        adoption.adopt(people["viewer"], project, "handmade")
    client.force_login(people["viewer"])
    assert (
        client.post(reverse("hosts:app_adopt"), {"project": project.pk, "name": "handmade"}).status_code
        == 403
    )
    client.force_login(people["provisioner"])
    other = client.post(reverse("hosts:app_adopt"), {"project": other_project.pk, "name": "theirs"})
    assert other.status_code == 404
    assert client.post(reverse("hosts:app_adopt"), {"project": "x", "name": "handmade"}).status_code == 404
    assert client.get(reverse("hosts:app_adopt")).status_code == 405
    assert not Application.objects.exists()


def test_a_refusal_is_said_on_the_applications_page(client, people, project, engines) -> None:
    _host(engines, project, "photon-1")
    client.force_login(people["provisioner"])
    answer = client.post(reverse("hosts:app_adopt"), {"project": project.pk, "name": "gone"}, follow=True)
    assert "No Compose project named" in answer.content.decode()
