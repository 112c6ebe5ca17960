"""Viewers see but cannot act; users outside a project see nothing of it, in views and on the websocket."""

from __future__ import annotations

import asyncio

import pytest
from django.urls import reverse

from hosts.models import Host
from tests.conftest import session_cookie
from tests.test_live import communicator

CID = "a" * 64


@pytest.fixture
def host(project) -> Host:  # type: ignore[no-untyped-def]
    # Never contacted here: access is decided before any engine is asked.
    return Host.objects.create(
        project=project, name="photon-x", docker_url="tcp://127.0.0.1:9", insecure=True
    )


ACTIONS = [
    ("hosts:edit", "post"),
    ("hosts:toggle", "post"),
    ("hosts:remove", "post"),
    ("hosts:deploy", "post"),
    ("hosts:verify_existing", "post"),
]


@pytest.mark.django_db
def test_outsiders_get_404_everywhere_and_see_no_row(client, people, host) -> None:
    client.force_login(people["outsider"])
    assert client.get(reverse("hosts:host", args=[host.pk])).status_code == 404
    assert client.get(reverse("hosts:container", args=[host.pk, CID])).status_code == 404
    assert client.post(reverse("hosts:container_action", args=[host.pk, CID, "stop"])).status_code == 404
    for name, method in ACTIONS:
        assert getattr(client, method)(reverse(name, args=[host.pk])).status_code == 404, name
    dashboard = client.get(reverse("hosts:index")).content.decode()
    assert "photon-x" not in dashboard and f"host-{host.pk}" not in dashboard


@pytest.mark.django_db
def test_viewers_see_but_cannot_act(client, people, host) -> None:
    client.force_login(people["viewer"])
    assert "photon-x" in client.get(reverse("hosts:index")).content.decode()
    page = client.get(reverse("hosts:host", args=[host.pk])).content.decode()
    assert "photon-x" in page and "Deploy a container" not in page and "toggle-host" not in page
    assert client.post(reverse("hosts:container_action", args=[host.pk, CID, "stop"])).status_code == 403
    assert client.post(reverse("hosts:container_remove", args=[host.pk, CID])).status_code == 403
    for name, method in ACTIONS:
        assert getattr(client, method)(reverse(name, args=[host.pk])).status_code == 403, name
    assert client.get(reverse("hosts:add")).status_code == 403
    assert Host.objects.filter(pk=host.pk, enabled=True).exists()


@pytest.mark.django_db
def test_provisioners_act_on_containers_but_do_not_manage_hosts(client, people, host) -> None:
    client.force_login(people["provisioner"])
    assert client.get(reverse("hosts:deploy", args=[host.pk])).status_code == 200
    assert client.get(reverse("hosts:edit", args=[host.pk])).status_code == 403
    assert client.post(reverse("hosts:remove", args=[host.pk])).status_code == 403


@pytest.mark.django_db
def test_actions_need_post(client, people, host) -> None:
    client.force_login(people["admin"])
    assert client.get(reverse("hosts:container_action", args=[host.pk, CID, "stop"])).status_code == 405
    assert client.get(reverse("hosts:toggle", args=[host.pk])).status_code == 405


@pytest.mark.django_db(transaction=True)
def test_websocket_topics_follow_project_membership(client, people, host, project) -> None:
    topics = [
        f"project:{project.pk}:hosts",
        f"project:{project.pk}:host:{host.pk}",
        f"project:{project.pk}:host:{host.pk}:container:{CID}:logs:10",
        "hosts:all",
    ]

    async def subscribe(cookie: str) -> dict:
        ws = communicator(cookie=cookie)
        assert (await ws.connect(timeout=10))[0]
        await ws.send_json_to({"subscribe": topics})
        reply = await ws.receive_json_from(timeout=5)
        while "subscribed" not in reply:  # a live message may come first (an Admin hears all hosts)
            reply = await ws.receive_json_from(timeout=5)
        await ws.disconnect()
        return reply

    outsider = asyncio.run(subscribe(session_cookie(client, people["outsider"])))
    assert outsider == {"subscribed": [], "refused": topics}
    viewer = asyncio.run(subscribe(session_cookie(client, people["viewer"])))
    assert viewer["refused"] == ["hosts:all"]
    admin = asyncio.run(subscribe(session_cookie(client, people["admin"])))
    assert admin["refused"] == []
