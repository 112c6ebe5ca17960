"""A host's images, volumes and networks (issue 17): who may create, tag, remove and prune them,
and what is refused before the engine is asked (a bind of the host's own files in disguise, a
gateway outside its subnet, a name or a reference Docker would refuse, a forged image id, a
Provisioner forcing an image's removal). No engine here: each refusal must come before one is
reached, and the hosts point at an address nothing answers. The lab test does it for real:
tests/hosts/test_engine_objects_on_lab.py."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from hosts.engine_objects import images, networks, reading, volumes
from hosts.fleet import engine
from hosts.models import Application, Host
from portal.models import AuditEntry, Role
from portal.refused import Refused

pytestmark = pytest.mark.django_db


@pytest.fixture
def host(project: Any) -> Host:
    return Host.objects.create(project=project, name="photon-1", docker_url="tcp://192.0.2.1:2376")


@pytest.fixture
def no_engine(monkeypatch: pytest.MonkeyPatch) -> list[Host]:
    """Fails the test if an engine is asked; the hosts that were."""
    asked: list[Host] = []

    def client_for(host: Host, timeout: float | None = None) -> Any:
        asked.append(host)
        raise AssertionError(f"{host} was asked")

    monkeypatch.setattr(engine, "client_for", client_for)
    return asked


@pytest.mark.parametrize(
    ("options", "said"),
    [
        ({"type": "none", "o": "bind", "device": "/"}, "type=none is not offered"),
        ({"device": "/etc"}, "type=(none) is not offered"),
        ({"type": "tmpfs", "o": "size=1m,bind"}, "o=bind is not offered"),
        ({"type": "nfs", "o": "rbind,addr=10.0.0.1"}, "o=bind is not offered"),
        ({"type": "tmpfs", "uid": "0"}, "not 'uid'"),
    ],
)
def test_a_volume_that_would_bind_the_hosts_own_files_is_refused(
    people, host, no_engine, options: dict[str, str], said: str
) -> None:
    with pytest.raises(Refused, match=said.replace("(", r"\(").replace(")", r"\)")):
        volumes.create_volume(people["provisioner"], host, "data", options, {})
    assert no_engine == [] and not AuditEntry.objects.filter(action="volume.create").exists()


@pytest.mark.parametrize(
    ("fields", "said"),
    [
        ({"subnet": "172.30.0.1/24"}, "is not a subnet"),
        ({"subnet": "172.30.0.0/24", "gateway": "172.31.0.1"}, "is not a host address of 172.30.0.0/24"),
        ({"subnet": "172.30.0.0/24", "gateway": "172.30.0.255"}, "is not a host address"),
        ({"gateway": "172.30.0.1"}, "A gateway needs its subnet"),
        ({"driver": "host"}, "The driver is one of bridge, macvlan, ipvlan"),
    ],
)
def test_a_network_the_engine_would_refuse_is_refused_in_words_first(
    people, host, no_engine, fields: dict[str, str], said: str
) -> None:
    with pytest.raises(Refused, match=said):
        networks.create_network(people["provisioner"], host, "back", **fields)
    assert no_engine == []


def test_names_docker_would_refuse_are_refused(people, host, no_engine) -> None:
    for name in ("a", "-lead", "has space", "x/y", "../etc", "é"):
        with pytest.raises(Refused, match="letters, digits, dots, dashes and underscores"):
            volumes.create_volume(people["provisioner"], host, name, {}, {})
        with pytest.raises(Refused, match="letters, digits"):
            networks.create_network(people["provisioner"], host, name)


def test_a_viewer_sees_no_button_and_is_refused_another_project_finds_nothing(
    client, people, host, other_project, make_user, no_engine
) -> None:
    client.force_login(people["viewer"])
    for name, args in (
        ("hosts:volume_new", [host.pk]),
        ("hosts:network_new", [host.pk]),
        ("hosts:volumes_prune", [host.pk]),
        ("hosts:networks_prune", [host.pk]),
        ("hosts:volume_remove", [host.pk, "data"]),
        ("hosts:network_remove", [host.pk, "0123456789ab"]),
    ):
        assert client.post(reverse(name, args=args), {"name": "data", "item": "data"}).status_code == 403
    client.force_login(make_user("stranger", project=other_project, role=Role.PROJECT_ADMIN))
    for name, args in (
        ("hosts:engine_objects", [host.pk]),
        ("hosts:volume_new", [host.pk]),
        ("hosts:volumes_prune", [host.pk]),
        ("hosts:volume_remove", [host.pk, "data"]),
    ):
        assert client.post(reverse(name, args=args), {"name": "data", "item": "data"}).status_code in (
            404,
            405,
        )
        assert client.get(reverse(name, args=args)).status_code == 404
    assert no_engine == [] and not AuditEntry.objects.filter(action__startswith="volume.").exists()


def test_a_disabled_host_is_not_asked(people, host, no_engine) -> None:
    Host.objects.filter(pk=host.pk).update(enabled=False)
    host.refresh_from_db()
    with pytest.raises(Refused, match="is disabled"):
        volumes.create_volume(people["provisioner"], host, "data", {}, {})
    with pytest.raises(Refused, match="is disabled"):
        networks.prune_networks(people["provisioner"], host, ["0123456789ab"])
    assert no_engine == []


def test_what_an_application_owns_is_never_offered_for_pruning(people, project, host) -> None:
    Application.objects.create(project=project, name="shop", source="services: {}\n", state="running")
    Application.objects.create(project=project, name="gone", source="services: {}\n", state="removed")
    owned = {"com.docker.compose.project": "shop"}
    left = {"com.docker.compose.project": "gone"}
    holdings = reading.Holdings(
        volumes=[
            reading.Volume("shop_data", "local", owned),
            reading.Volume("gone_data", "local", left),
            reading.Volume("used", "local", {}, used_by=["web"]),
            reading.Volume("spare", "local", {}),
        ],
        networks=[
            reading.Network("1" * 64, "bridge", "bridge", "local", [], [], {}),
            reading.Network("2" * 64, "shop_default", "bridge", "local", [], [], owned),
            reading.Network("3" * 64, "spare-net", "bridge", "local", [], [], {}),
        ],
    )
    assert [v.name for v in volumes.prunable_volumes(holdings, host)] == ["gone_data", "spare"]
    assert [n.name for n in networks.prunable_networks(holdings, host)] == ["spare-net"]


IMAGE = "sha256:" + "ab" * 32


def test_image_ids_references_and_forcing_are_checked_before_the_engine(people, host, no_engine) -> None:
    for forged in ("ab" * 32, "sha256:../../x", "busybox:latest", "sha256:" + "AB" * 32):
        with pytest.raises(Refused, match="no such image") as refused:
            images.remove_image(people["provisioner"], host, forged)
        assert refused.value.status == 404
    for good in (
        "lab/busybox",
        "127.0.0.1:5000/lab/x",
        "registry.example.com:5000/team/web",
        "localhost/a_b__c-d.e",
    ):
        assert images.valid_repository(good), good
    for bad in ("UPPER/case:1", "web:tag with space", "web:" + "x" * 200, "-lead/x", "a//b", "", "ex.com/UP"):
        with pytest.raises(Refused, match="Not an image reference"):
            images.tag_image(people["provisioner"], host, IMAGE, bad)
    # Only a Project admin forces an image from under its containers.
    with pytest.raises(PermissionDenied):
        images.remove_image(people["provisioner"], host, IMAGE, force=True)
    assert no_engine == [] and not AuditEntry.objects.filter(action__startswith="image.").exists()


def test_a_viewer_may_not_remove_tag_or_prune_images(client, people, host, no_engine) -> None:
    client.force_login(people["viewer"])
    for name, args in (
        ("hosts:images_prune", [host.pk]),
        ("hosts:image_remove", [host.pk, IMAGE]),
        ("hosts:image_tag", [host.pk, IMAGE]),
    ):
        assert client.post(reverse(name, args=args), {"item": IMAGE, "reference": "x:1"}).status_code == 403
    assert no_engine == []


def test_images_used_by_any_container_are_never_offered_for_pruning() -> None:
    holdings = reading.Holdings(
        volumes=[],
        networks=[],
        images=[
            reading.Image("sha256:" + "1" * 64, ["web:1"], 10, 0, used_by=["web-1"]),
            reading.Image("sha256:" + "2" * 64, ["web:0"], 10, 0),
            reading.Image("sha256:" + "3" * 64, [], 10, 0, used_by=["stopped-job"]),
        ],
    )
    assert [i.tags for i in images.prunable_images(holdings)] == [["web:0"]]


class _CountingApi:
    """An engine's answers, each call counted: what a page costs in round trips."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def containers(self, all: bool = False) -> list[dict[str, Any]]:
        self.calls.append("containers")
        mounts = [{"Type": "volume", "Name": "data"}, {"Type": "bind", "Source": "/etc"}]
        nets = {"Networks": {"back": {"NetworkID": "n" * 64}}}
        return [
            {"Names": ["/web"], "ImageID": "sha256:" + "1" * 64, "Mounts": mounts, "NetworkSettings": nets}
        ]

    def volumes(self) -> dict[str, Any]:
        self.calls.append("volumes")
        return {"Volumes": [{"Name": "data", "Driver": "local"}, {"Name": "spare", "Driver": "local"}]}

    def networks(self) -> list[dict[str, Any]]:
        self.calls.append("networks")
        ipam = {"Config": [{"Subnet": "172.30.0.0/24", "Gateway": "172.30.0.1"}]}
        return [{"Id": "n" * 64, "Name": "back", "Driver": "bridge", "IPAM": ipam}]

    def images(self) -> list[dict[str, Any]]:
        self.calls.append("images")
        return [{"Id": "sha256:" + "1" * 64, "RepoTags": ["web:1", "<none>:<none>"], "Size": 5}]

    def df(self) -> dict[str, Any]:
        self.calls.append("df")
        return {
            "Volumes": [
                {"Name": "spare", "UsageData": {"Size": 42}},
                {"Name": "data", "UsageData": {"Size": -1}},
            ]
        }


def test_the_section_costs_one_call_per_kind_and_one_for_who_uses_what() -> None:
    sdk = type("Sdk", (), {"api": _CountingApi()})()
    holdings = reading.read(sdk)
    assert sorted(sdk.api.calls) == ["containers", "images", "networks", "volumes"]
    assert [(v.name, v.used_by) for v in holdings.volumes] == [("data", ["web"]), ("spare", [])]
    assert holdings.networks[0].used_by == ["web"] and holdings.networks[0].gateways == ["172.30.0.1"]
    assert holdings.images[0].tags == ["web:1"] and holdings.images[0].used_by == ["web"]
    sdk.api.calls.clear()
    sized = reading.read(sdk, sizes=True, kinds=("volumes",))
    assert sorted(sdk.api.calls) == ["containers", "df", "volumes"]  # one kind: no other list asked
    assert [(v.name, v.size) for v in sized.volumes] == [("data", None), ("spare", 42)]
    assert sized.networks == [] and sized.images == []


def test_an_engine_that_does_not_answer_is_told_on_the_page_never_a_500(client, people, project) -> None:
    with socket.socket() as closed:  # a port nothing listens on: refused at once
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    host = Host.objects.create(
        project=project, name="photon-down", docker_url=f"tcp://127.0.0.1:{port}", insecure=True
    )
    client.force_login(people["provisioner"])
    section = client.get(reverse("hosts:engine_objects", args=[host.pk]))
    assert section.status_code == 200
    assert (
        'id="engine-objects-error"' in section.content.decode() and "photon-down" in section.content.decode()
    )
    page = client.post(reverse("hosts:volume_new", args=[host.pk]), {"name": "data"})
    assert page.status_code == 200 and "photon-down" in page.content.decode()
    pruned = client.post(reverse("hosts:images_prune", args=[host.pk]), {"item": IMAGE}, follow=True)
    assert pruned.status_code == 200 and "photon-down" in pruned.content.decode()
    assert client.get(reverse("hosts:volumes_prune", args=[host.pk])).status_code == 404
    assert not AuditEntry.objects.filter(action__in=["volume.create", "image.prune"]).exists()
