"""A page of any list costs the same few queries however many rows it holds."""

from __future__ import annotations

import pytest

from hosts.models import Host, Tag
from hosts.models.changes import Change, ChangeRun, Profile
from portal.models import Project, Role
from tests.api.common import client_for

pytestmark = pytest.mark.django_db


def test_list_pages_do_not_grow_with_their_rows(make_user, django_assert_max_num_queries) -> None:  # type: ignore[no-untyped-def]
    web = Project.objects.create(name="web")
    tag = Tag.objects.create(name="prod")
    hosts = [
        Host.objects.create(project=web, name=f"h{i}", docker_url="tcp://127.0.0.1:9") for i in range(30)
    ]
    for host in hosts:
        host.tags.add(tag)
    profile = Profile.objects.create(project=web, name="p", settings={"sshd": {"MaxAuthTries": 3}})
    profile.hosts.set(hosts)
    for i in range(30):
        change = Change.objects.create(project=web, title=f"c{i}", profile=profile)
        ChangeRun.objects.create(change=change, host=hosts[i], progress=50)
    api = client_for(make_user("viewer", project=web, role=Role.VIEWER))
    for url, rows in (("/api/hosts/", 30), ("/api/changes/", 30), ("/api/profiles/", 1)):
        # auth (token, last_used), access (membership), count, page, prefetches
        with django_assert_max_num_queries(12):
            response = api.get(url)
        assert response.status_code == 200 and len(response.json()["results"]) == rows, url
    assert {c["progress"] for c in api.get("/api/changes/").json()["results"]} == {50}
