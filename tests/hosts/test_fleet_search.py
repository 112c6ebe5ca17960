"""Find across the fleet (issue 17): one search for the containers, images and volumes of every
host a person may see, answered from the inventory the engines watcher keeps (hosts.inventory),
never from the engines. Here the engines are fakes answering the docker SDK's list calls; the lab
test does it with real ones: tests/hosts/test_fleet_search_on_lab.py."""

from __future__ import annotations

import asyncio
import datetime
import threading
from types import SimpleNamespace
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from hosts.fleet import container_rows, watch
from hosts.fleet import containers as engine_containers
from hosts.fleet import trust as engine_trust
from hosts.inventory import keeping, reading, search
from hosts.models import EngineObject, Host
from portal.models import Project, Role
from portal.watchers import Shard
from tests.api.common import client_for
from tests.lab.common import wait_until

pytestmark = pytest.mark.django_db


def container(
    cid: str, name: str, image: str = "nginx:1.25", state: str = "running", **extra: Any
) -> dict[str, Any]:
    """A container as the engine lists it (``GET /containers/json``)."""
    return {
        "Id": cid.ljust(64, "0"),
        "Names": [f"/{name}"],
        "Image": image,
        "State": state,
        "Status": "Up 1 minute",
        "Created": 1_700_000_000,
        "Ports": extra.get("ports", []),
        "Labels": extra.get("labels", {}),
    }


class FakeApi:
    """The list calls the inventory makes, answering from lists a test changes; what was asked."""

    def __init__(self, containers: list[dict[str, Any]] | None = None) -> None:
        self.listed: list[dict[str, Any]] = containers or []
        self.image_list: list[dict[str, Any]] = [
            {"Id": "sha256:" + "ab" * 32, "RepoTags": ["nginx:1.25", "nginx:latest"], "Labels": None}
        ]
        self.volume_list: list[dict[str, Any]] = [
            {"Name": "pgdata", "Driver": "local", "Labels": {"backup": "nightly"}}
        ]
        self.calls: list[str] = []

    def containers(self, all: bool = False, filters: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        self.calls.append("containers")
        wanted = (filters or {}).get("id")
        return [c for c in self.listed if wanted is None or c["Id"].startswith(wanted)]

    def images(self) -> list[dict[str, Any]]:
        self.calls.append("images")
        return self.image_list

    def volumes(self) -> dict[str, Any]:
        self.calls.append("volumes")
        return {"Volumes": self.volume_list}


class FakeSdk:
    def __init__(self, containers: list[dict[str, Any]] | None = None) -> None:
        self.api = FakeApi(containers)

    def close(self) -> None:
        pass


def host_with(project: Project, name: str, containers: list[dict[str, Any]]) -> tuple[Host, FakeSdk]:
    """A host whose engine's state the watcher has read once (as when its stream starts)."""
    host = Host.objects.create(project=project, name=name, docker_url="tcp://192.0.2.1:2376")
    sdk = FakeSdk(containers)
    keeping.resync(host, sdk)
    return host, sdk


WEB = container(
    "a1",
    "web-frontend",
    ports=[{"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}],
    labels={"tier": "frontend", "com.example.team": "shop"},
)
DB = container("b2", "orders-db", image="postgres:16", state="exited", labels={"tier": "backend"})


def names(found: search.Found) -> list[str]:
    return [row.name for row in found.containers]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("web-front", ["web-frontend"]),
        ("WEB", ["web-frontend"]),  # case ignored
        ("postgres:16", ["orders-db"]),  # by image
        ("tier", ["orders-db", "web-frontend"]),  # a label's key
        ("tier=backend", ["orders-db"]),  # a label as key=value
        ("shop", ["web-frontend"]),  # a label's value
        ("8080", ["web-frontend"]),  # a published port
        ("80/tcp", ["web-frontend"]),
        ("tier frontend", ["web-frontend"]),  # every word must match
        ("8081", []),
        ("tier=frontendx", []),
        ("%", []),  # LIKE's wildcards are text here
    ],
)
def test_a_container_is_found_by_name_image_label_and_port(
    people, project, text: str, expected: list[str]
) -> None:
    host_with(project, "photon-1", [WEB, DB])
    assert names(search.search(people["viewer"], text)) == expected


def test_images_and_volumes_are_found_with_their_host(people, project) -> None:
    host_with(project, "photon-1", [WEB])
    found = search.search(people["viewer"], "nginx:latest")
    assert [(i.name, i.host.name) for i in found.images] == [("nginx:1.25", "photon-1")]
    assert [c.name for c in found.containers] == []  # the container runs nginx:1.25, not :latest
    assert [v.name for v in search.search(people["viewer"], "backup=nightly").volumes] == ["pgdata"]


def test_another_projects_objects_are_never_found(client, make_user, people, project, other_project) -> None:
    host_with(project, "photon-a", [container("c3", "payroll-db", labels={"secret": "yes"})])
    member_of_b = make_user("bob", project=other_project, role=Role.PROJECT_ADMIN)
    host_with(other_project, "photon-b", [container("d4", "b-web")])
    for user in (member_of_b, people["outsider"]):
        assert search.search(user, "payroll").total == 0
        client.force_login(user)
        page = client.get(reverse("hosts:search"), {"q": "payroll"}).content.decode()
        assert "payroll-db" not in page and "photon-a" not in page
        assert 'id="search-nothing"' in page
    assert names(search.search(member_of_b, "web")) == ["b-web"]  # their own, yes
    assert names(search.search(people["admin"], "payroll")) == ["payroll-db"]  # an Admin sees all


def test_a_viewer_sees_but_cannot_act_a_provisioner_can(client, people, project) -> None:
    host, _ = host_with(project, "photon-1", [WEB])
    client.force_login(people["viewer"])
    page = client.get(reverse("hosts:search"), {"q": "web-frontend"}).content.decode()
    assert 'data-name="web-frontend"' in page and 'data-host="photon-1"' in page
    assert reverse("hosts:host", args=[host.pk]) in page
    assert f'href="{reverse("hosts:container", args=[host.pk, WEB["Id"]])}"' in page
    assert "data-action=" not in page
    stop = reverse("hosts:container_action", args=[host.pk, WEB["Id"], "stop"])
    assert client.post(stop).status_code == 403
    client.force_login(people["provisioner"])
    page = client.get(reverse("hosts:search"), {"q": "web-frontend"}).content.decode()
    assert f'hx-post="{stop}"' in page
    assert f'href="{reverse("hosts:container_remove", args=[host.pk, WEB["Id"]])}"' in page


def test_engine_text_is_escaped(client, people, project) -> None:
    # Docker's own names are tame, but an engine answers what it likes: id, name, labels, image.
    evil = container(
        '"><i>x/../../',
        "<script>alert(1)</script>",
        image="<b>img</b>",
        labels={"note": '"><img src=x onerror=alert(2)>'},
    )
    host_with(project, "photon-1", [evil])
    client.force_login(people["provisioner"])  # the action buttons carry the id too
    for params in ({"q": "script"}, {"q": "onerror"}):
        page = client.get(reverse("hosts:search"), params).content.decode()
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "&lt;b&gt;img&lt;/b&gt;" in page
        assert "<script>alert" not in page and "<img src=x" not in page and "<b>img" not in page
        # In a link the id is quoted: it stays one segment of the container's path.
        assert "<i>" not in page and "/containers/%22%3E%3Ci%3Ex%2F..%2F..%2F" in page


def _page_queries(client: Any, text: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("hosts:search"), {"q": text}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    return len(queries)


@pytest.mark.parametrize("who", ["viewer", "admin"])
def test_the_number_of_queries_does_not_grow_with_the_hosts(client, people, project, who: str) -> None:
    user = people[who]
    host_with(project, "photon-00", [container("f0", "app-00"), DB])
    client.force_login(user)
    with CaptureQueriesContext(connection) as one_host:
        found = search.search(user, "app")
    assert len(found.containers) == 1 and found.images == [] and found.volumes == []
    page_one = _page_queries(client, "app")

    for i in range(1, 20):
        host_with(project, f"photon-{i:02d}", [container(f"f{i:02d}", f"app-{i:02d}"), DB])
    with CaptureQueriesContext(connection) as twenty_hosts:
        found = search.search(user, "app")
    assert len(found.containers) == 20 and {c.host.name for c in found.containers} == {
        f"photon-{i:02d}" for i in range(20)
    }
    assert len(twenty_hosts) == len(one_host)
    assert _page_queries(client, "app") == page_one


def test_a_long_list_is_cut_and_says_so(people, project) -> None:
    host_with(project, "photon-1", [container(f"{i:02x}", f"job-{i:02d}") for i in range(12)])
    found = search.search(people["viewer"], "job", limit=10)
    assert len(found.containers) == 10 and found.more["container"] is True
    assert found.more["image"] is False


def test_too_short_a_text_searches_nothing(client, people, project) -> None:
    host_with(project, "photon-1", [WEB])
    assert search.search(people["viewer"], " w ").total == 0
    client.force_login(people["viewer"])
    page = client.get(reverse("hosts:search"), {"q": "w"}).content.decode()
    assert 'id="search-too-short"' in page and "web-frontend" not in page


def test_as_you_type_gets_the_results_alone_the_page_has_its_box(client, people, project) -> None:
    host_with(project, "photon-1", [WEB])
    client.force_login(people["viewer"])
    part = client.get(reverse("hosts:search"), {"q": "web"}, HTTP_HX_REQUEST="true").content.decode()
    assert 'data-name="web-frontend"' in part and "<html" not in part
    page = client.get(reverse("hosts:search"), {"q": "web"}).content.decode()
    assert 'hx-trigger="input changed delay:300ms, search"' in page and 'id="search-results"' in page
    # Every page's header has the box that leads here.
    header = client.get(reverse("hosts:index")).content.decode()
    assert f'action="{reverse("hosts:search")}"' in header and 'name="q"' in header


def test_a_container_event_updates_its_row_and_a_removed_one_is_no_longer_found(people, project) -> None:
    host, sdk = host_with(project, "photon-1", [WEB, DB])
    viewer = people["viewer"]
    # It stops: the engine's summary, as the watcher hands it to the listeners.
    sdk.api.listed[0] = {**WEB, "State": "exited"}
    keeping.on_container(host, WEB["Id"], _summary(sdk, WEB["Id"]), sdk)
    assert [c.state for c in search.search(viewer, "web-frontend").containers] == ["exited"]
    # A new one is added by its event, before any snapshot.
    sdk.api.listed.append(container("c9", "web-canary"))
    keeping.on_container(host, "c9".ljust(64, "0"), _summary(sdk, "c9"), sdk)
    assert names(search.search(viewer, "web")) == ["web-canary", "web-frontend"]

    # Removed: its event's summary is None.
    before_removal = timezone.now() - datetime.timedelta(seconds=1)
    sdk.api.listed = [c for c in sdk.api.listed if c["Id"] != WEB["Id"]]
    keeping.on_container(host, WEB["Id"], None, sdk)
    assert names(search.search(viewer, "web")) == ["web-canary"]
    # A snapshot that read the engine before the removal does not bring it back...
    stale = reading.read(FakeSdk([WEB, DB]), reading.KINDS)
    keeping.store(host, stale, before_removal)
    assert names(search.search(viewer, "web")) == ["web-canary"]
    # ...and the next one leaves no trace of it.
    keeping.resync(host, sdk)
    assert not EngineObject.objects.filter(engine_id=WEB["Id"]).exists()
    assert names(search.search(viewer, "web")) == ["web-canary"]


def test_a_snapshot_mends_what_the_events_missed(people, project) -> None:
    host, sdk = host_with(project, "photon-1", [WEB, DB])
    # While the stream was down: the database went, a cache came.
    sdk.api.listed = [WEB, container("c7", "cache", image="redis:7")]
    sdk.api.volume_list = []
    keeping.resync(host, sdk)
    assert names(search.search(people["viewer"], "redis")) == ["cache"]
    assert names(search.search(people["viewer"], "orders")) == []
    assert search.search(people["viewer"], "pgdata").volumes == []


def test_an_image_or_volume_event_reads_that_kind_again(people, project) -> None:
    host, sdk = host_with(project, "photon-1", [WEB])
    sdk.api.calls.clear()
    sdk.api.image_list.append({"Id": "sha256:" + "cd" * 32, "RepoTags": ["busybox:1.36"], "Labels": {}})
    keeping.on_event(host, {"Type": "image", "Action": "pull", "Actor": {"ID": "busybox:1.36"}}, sdk)
    assert sdk.api.calls == ["images"]
    assert [i.name for i in search.search(people["viewer"], "busybox").images] == ["busybox:1.36"]
    # A volume mounted by a container's start changes no volume: the engine is not asked.
    keeping.on_event(host, {"Type": "volume", "Action": "mount", "Actor": {"ID": "pgdata"}}, sdk)
    keeping.on_event(host, {"Type": "container", "Action": "start", "Actor": {"ID": WEB["Id"]}}, sdk)
    assert sdk.api.calls == ["images"]
    sdk.api.volume_list = [{"Name": "logs", "Driver": "local", "Labels": {}}]
    keeping.on_event(host, {"Type": "volume", "Action": "destroy", "Actor": {"ID": "pgdata"}}, sdk)
    assert [v.name for v in search.search(people["viewer"], "pgdata").volumes] == []
    assert [v.name for v in search.search(people["viewer"], "logs").volumes] == ["logs"]


def test_the_inventory_is_plugged_into_the_watcher() -> None:
    assert keeping.on_container in container_rows.CONTAINER_LISTENERS
    assert watch.Follower(event=keeping.on_event, resync=keeping.resync) in watch.FOLLOWERS


@pytest.mark.django_db(transaction=True)
def test_the_watchers_container_event_reaches_the_search(people, project, monkeypatch) -> None:
    """Through the watcher's own handler: the event, the engine read once, the row updated."""
    host, sdk = host_with(project, "photon-1", [WEB])
    monkeypatch.setattr(watch, "_client", lambda target: sdk)
    target = watch.Target(host.pk, host.docker_url, engine_trust.Trust.of(host))
    sdk.api.listed = []
    watch._on_event(target, {"Type": "container", "Action": "destroy", "Actor": {"ID": WEB["Id"]}})
    assert names(search.search(people["viewer"], "web")) == []
    sdk.api.listed = [container("aa", "web-2")]
    watch._on_event(target, {"Type": "container", "Action": "create", "Actor": {"ID": "aa".ljust(64, "0")}})
    assert names(search.search(people["viewer"], "web")) == ["web-2"]


def test_a_host_removed_takes_its_objects_along(people, project) -> None:
    host, _ = host_with(project, "photon-1", [WEB])
    host.delete()
    assert not EngineObject.objects.exists()


def _summary(sdk: FakeSdk, cid: str) -> Any:
    return engine_containers.container_summary(sdk, cid)  # type: ignore[arg-type]


def test_a_nul_in_the_text_is_no_server_error(client, people, project) -> None:
    host_with(project, "photon-1", [WEB])
    client.force_login(people["viewer"])
    # The page's form refuses it (saying so beside the box); the service drops it.
    response = client.get(reverse("hosts:search"), {"q": "web\x00front"})
    assert response.status_code == 200 and "Null characters are not allowed" in response.content.decode()
    assert names(search.search(people["viewer"], "web-\x00front")) == ["web-frontend"]


def test_the_api_answers_the_same_search_for_the_same_people(
    make_user, people, project, other_project
) -> None:
    host, _ = host_with(project, "photon-a", [WEB, DB])
    host_with(other_project, "photon-b", [container("d4", "web-b")])
    answer = client_for(people["viewer"]).get("/api/fleet-search/", {"q": "web"})
    assert answer.status_code == 200
    body = answer.json()
    assert [(c["name"], c["host"], c["host_name"]) for c in body["containers"]] == [
        ("web-frontend", host.pk, "photon-a")
    ]
    assert body["containers"][0]["ports"] == ["0.0.0.0:8080->80/tcp"]
    assert body["containers"][0]["labels"]["tier"] == "frontend"
    assert body["more"] == {"container": False, "image": False, "volume": False}
    member_of_b = make_user("bob", project=other_project, role=Role.VIEWER)
    assert [
        c["name"]
        for c in client_for(member_of_b).get("/api/fleet-search/", {"q": "web"}).json()["containers"]
    ] == ["web-b"]
    unknown = client_for(people["viewer"]).get("/api/fleet-search/", {"q": "web", "host": "1"})
    assert unknown.status_code == 400 and "host" in unknown.json()["detail"]
    assert client_for(None).get("/api/fleet-search/", {"q": "web"}).status_code == 401


def test_the_watcher_reads_a_host_again_when_its_stream_starts_and_every_few_minutes(monkeypatch) -> None:
    """The schedule of the full reads (watch.EngineWatcher), without an engine: at once for a
    stream that (re)connected, then every RESYNC_EVERY, never two at once, none while down."""
    read: list[int] = []
    going = threading.Event()
    going.set()

    def resync(target: Any) -> None:
        going.wait(10)
        read.append(target.pk)

    monkeypatch.setattr(watch, "_resync", resync)
    loop = asyncio.new_event_loop()
    watcher = watch.EngineWatcher(Shard(), 15, 1)
    watcher.loop = loop
    stream = SimpleNamespace(target=SimpleNamespace(pk=7), connected=threading.Event())
    watcher.streams = {7: stream}  # type: ignore[dict-item]

    def tick(now: float, reads: int) -> None:
        watcher._start_resyncs(now)
        wait_until(lambda: len(read) == reads, timeout=5, what=f"{reads} reads")
        loop.run_until_complete(asyncio.sleep(0.05))  # the pool's "done" reaches the loop

    try:
        tick(1000.0, 0)  # not connected: nothing to read
        stream.connected.set()
        tick(1000.0, 1)  # connected: read at once
        tick(1000.0 + watch.RESYNC_EVERY - 1, 1)
        tick(1000.0 + watch.RESYNC_EVERY, 2)
        watcher._connected_from_thread(stream.target)  # type: ignore[arg-type]  # it reconnected
        loop.run_until_complete(asyncio.sleep(0.05))
        tick(1000.0 + watch.RESYNC_EVERY + 1, 3)
        going.clear()  # a slow read: the next round does not start another beside it
        watcher._start_resyncs(5000.0)
        watcher._start_resyncs(9000.0)
        going.set()
        watcher.resync_pool.shutdown(wait=True)  # every read submitted has run
        assert read == [7, 7, 7, 7]
    finally:
        going.set()
        watcher.resync_pool.shutdown(wait=True)
        watcher.check_pool.shutdown(wait=True)
        watcher.event_pool.shutdown(wait=True)
        loop.close()
