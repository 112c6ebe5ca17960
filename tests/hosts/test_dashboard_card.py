"""The portal dashboard's hosts card: hosts by status and containers running, for the user's projects
only, subscribed to the same live topics as the fleet page; its cost does not grow with the fleet."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from hosts.fleet import counters, status
from hosts.models import Host, HostStatus

pytestmark = pytest.mark.django_db


def _count(html: str, key: str) -> int:
    card = html.split('id="card-hosts"', 1)[1]
    return int(re.search(rf'data-count="{key}">(\d+)<', card)[1])  # type: ignore[index]


def _make(project, count: int, state: str, running: int) -> None:  # type: ignore[no-untyped-def]
    Host.objects.bulk_create(
        Host(
            project=project,
            name=f"{project.name}-{state}-{i}",
            docker_url=f"tcp://10.1.0.{i}:2376",
            status=state,
            containers_running=running,
        )
        for i in range(count)
    )
    counters.repair()  # bulk_create sends no signal: counted as the engines watcher's repair does


def test_the_card_counts_only_the_users_projects_and_is_live(client, people, project, other_project) -> None:
    _make(project, 3, HostStatus.ON, 2)
    _make(project, 1, HostStatus.SUSPECT, 1)
    _make(other_project, 5, HostStatus.OFF, 7)

    client.force_login(people["viewer"])
    html = client.get(reverse("dashboard")).content.decode()
    assert (_count(html, "total"), _count(html, "on"), _count(html, "suspect"), _count(html, "off")) == (
        4,
        3,
        1,
        0,
    )
    assert _count(html, "running") == 7
    assert f'data-live-topics="{status.project_topic(project.pk)}"' in html
    assert status.project_topic(other_project.pk) not in html

    client.force_login(people["admin"])
    html = client.get(reverse("dashboard")).content.decode()
    assert (_count(html, "total"), _count(html, "off"), _count(html, "running")) == (9, 5, 42)
    assert f'data-live-topics="{status.ALL_HOSTS_TOPIC}"' in html

    client.force_login(people["outsider"])
    html = client.get(reverse("dashboard")).content.decode()
    assert "No hosts to show" in html and "data-count" not in html


def test_the_card_costs_the_same_queries_whatever_the_fleet(
    client, people, project, django_assert_max_num_queries
) -> None:
    client.force_login(people["viewer"])
    _make(project, 2, HostStatus.ON, 1)
    # The whole dashboard: every area's card (hosts, vSphere, changes, registries) and the
    # header's approvals badge; what matters is that it does not grow with the fleet.
    with django_assert_max_num_queries(24) as small:
        client.get(reverse("dashboard"))
    _make(project, 300, HostStatus.OFF, 0)
    with django_assert_max_num_queries(len(small.captured_queries)):
        client.get(reverse("dashboard"))
