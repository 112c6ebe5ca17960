"""The fleet page's Security updates column and "exposed to CVE-…" filter, the host page's
Updates card and the "Check now" buttons: who may ask, what each person sees, what is escaped,
and a fleet page whose queries do not grow with the hosts."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from hosts.models import Host, HostPatchStatus
from hosts.patches import services, status
from portal.models import AuditEntry, Project, Role
from tests.api.common import client_for
from tests.patches import repos
from tests.patches.patch_fleet import ADVISORIES, HOST_A, HOST_B, FakeHosts, make_host, served
from tests.patches.repos import Adv, nevra

pytestmark = pytest.mark.django_db


@pytest.fixture
def project() -> Project:
    return Project.objects.create(name="Photon fleet")


@pytest.fixture
def other_project() -> Project:
    return Project.objects.create(name="Elsewhere")


@pytest.fixture
def people(make_user: Any, project: Project, other_project: Project) -> dict[str, Any]:
    return {
        "admin": make_user("root", admin=True),
        "manager": make_user("manager", project=project, role=Role.PROJECT_ADMIN),
        "provisioner": make_user("prov", project=project, role=Role.PROVISIONER),
        "viewer": make_user("viewer", project=project, role=Role.VIEWER),
        "other": make_user("other", project=other_project, role=Role.PROJECT_ADMIN),
    }


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[Any, ...]]]:
    """What the buttons queue (no worker here: the service and the task are tested apart)."""
    sent: list[tuple[str, tuple[Any, ...]]] = []
    monkeypatch.setattr(services, "enqueue", lambda task, *args: sent.append((task.name, args)))
    monkeypatch.setattr(
        services, "enqueue_each", lambda task, calls: sent.extend((task.name, c) for c in calls)
    )
    return sent


def refreshed(hosts: list[Host], answers: dict[str, Any], files: dict[str, bytes] | None = None) -> None:
    http, _ = repos.session(files or served())
    status.refresh_hosts(hosts, reader=FakeHosts(answers), session=http)


@pytest.fixture
def fleet(project: Project, other_project: Project) -> dict[str, Host]:
    hosts = {
        "a": make_host(project, "photon-a"),
        "b": make_host(project, "photon-b"),
        "c": make_host(project, "photon-c"),
        "x": make_host(other_project, "photon-x"),
    }
    refreshed(
        list(hosts.values()),
        {"photon-a": HOST_A, "photon-b": HOST_B, "photon-c": HOST_B, "photon-x": HOST_A},
    )
    # c has nothing pending any more: read again against a repository without advisories.
    refreshed([hosts["c"]], {"photon-c": HOST_B}, served([]))
    return hosts


def names(response: Any) -> set[str]:
    body = response.content.decode()
    return {name for name in ("photon-a", "photon-b", "photon-c", "photon-x") if f">{name}</a>" in body}


# -- the fleet page ---------------------------------------------------------------------------------


def test_the_column_shows_pending_security_advisories_by_severity(
    client: Any, people: Any, fleet: Any
) -> None:
    client.force_login(people["viewer"])
    body = client.get(reverse("hosts:index")).content.decode()
    a = body[body.index(f'id="patches-{fleet["a"].pk}"') :].split("</td>")[0]
    assert 'data-severity="Critical"' in a and ">Critical 1<" in a and ">Important 2<" in a
    assert 'data-updates="5"' in a and "5 updates" in a
    b = body[body.index(f'id="patches-{fleet["b"].pk}"') :].split("</td>")[0]
    assert "Critical" not in b and ">Important 1<" in b and "1 update<" in b
    c = body[body.index(f'id="patches-{fleet["c"].pk}"') :].split("</td>")[0]
    assert 'data-severity="none"' in c


@pytest.mark.parametrize(
    ("asked", "expected"),
    [
        ("CVE-2026-0001", {"photon-a"}),
        ("CVE-2026-0002", {"photon-a", "photon-b"}),
        (" cve-2026-0003 ", {"photon-a"}),
        ("CVE-2026-0009", set()),
    ],
)
def test_hosts_exposed_to_a_cve(client: Any, people: Any, fleet: Any, asked: str, expected: set[str]) -> None:
    client.force_login(people["provisioner"])
    response = client.get(reverse("hosts:index"), {"cve": asked})
    assert response.status_code == 200
    assert names(response) == expected
    if not expected:
        assert "No host matches." in response.content.decode()


def test_an_admin_finds_exposed_hosts_in_every_project(client: Any, people: Any, fleet: Any) -> None:
    client.force_login(people["admin"])
    assert names(client.get(reverse("hosts:index"), {"cve": "CVE-2026-0001"})) == {"photon-a", "photon-x"}
    client.force_login(people["other"])
    assert names(client.get(reverse("hosts:index"), {"cve": "CVE-2026-0001"})) == {"photon-x"}


@pytest.mark.parametrize("asked", ["CVE-12", "openssl", "CVE-2026-1' OR 1=1 --", "<script>alert(1)</script>"])
def test_a_cve_filter_that_is_not_a_cve_id_is_a_clear_message(
    client: Any, people: Any, fleet: Any, asked: str
) -> None:
    client.force_login(people["viewer"])
    response = client.get(reverse("hosts:index"), {"cve": asked})
    body = response.content.decode()
    assert response.status_code == 400
    assert 'id="cve-error"' in body and "is not a CVE id (such as CVE-2026-12345)" in body
    assert names(response) == set()
    assert "<script>alert(1)</script>" not in body


def _fleet_page_queries(client: Any, **params: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("hosts:index"), params)
    assert response.status_code == 200
    return len(queries)


@pytest.mark.parametrize("who", ["viewer", "admin"])
def test_the_fleet_pages_queries_do_not_grow_with_the_hosts(
    client: Any, people: Any, project: Project, who: str
) -> None:
    client.force_login(people[who])
    first = make_host(project, "photon-000")
    refreshed([first], {"photon-000": HOST_A})
    _fleet_page_queries(client)  # the first read of a session fills caches (counters, the header's badges)
    one = _fleet_page_queries(client)
    one_filtered = _fleet_page_queries(client, cve="CVE-2026-0002")
    hosts = [make_host(project, f"photon-{i:03d}") for i in range(1, 25)]
    refreshed(hosts, {h.name: (HOST_A if i % 2 else HOST_B) for i, h in enumerate(hosts)})
    assert _fleet_page_queries(client) == one
    assert _fleet_page_queries(client, cve="CVE-2026-0002") == one_filtered
    body = client.get(reverse("hosts:index")).content.decode()
    assert body.count('data-severity="Important"') == 25


# -- the host page's Updates card -------------------------------------------------------------------


def test_the_updates_card_lists_advisories_and_other_updates(client: Any, people: Any, fleet: Any) -> None:
    client.force_login(people["viewer"])
    body = client.get(reverse("hosts:host_updates", args=[fleet["a"].pk])).content.decode()
    for advisory in ("PHSA-2026-0001", "PHSA-2026-0002", "PHSA-2026-0003", "PHBA-2026-0005"):
        assert f'data-advisory="{advisory}"' in body
    assert "PHSA-2026-0004" not in body
    assert "openssl.x86_64 3.0.8-1.ph5 → 3.0.8-2.ph5" in body and "CVE-2026-0001" in body
    assert 'id="reboot-suggested"' in body
    other = body[body.index('id="other-updates"') : body.index('id="host-repositories"')]
    assert "vim.x86_64" in other and "openssl" not in other
    assert 'data-repo="photon-updates"' in body and 'data-repo="photon-extras"' in body
    installed = body[body.index('id="installed-packages"') :]
    assert (
        "Installed packages (6)" in installed
        and 'openssl.x86_64</td><td class="left">3.0.8-1.ph5' in installed
    )
    # A Viewer sees the card, not the button.
    assert "patches-refresh" not in body
    client.force_login(people["provisioner"])
    body = client.get(reverse("hosts:host_updates", args=[fleet["a"].pk])).content.decode()
    assert 'id="patches-refresh"' in body and "csrfmiddlewaretoken" in body
    page = client.get(reverse("hosts:host", args=[fleet["a"].pk])).content.decode()
    assert reverse("hosts:host_updates", args=[fleet["a"].pk]) in page
    assert f'data-live-topics="{status.patches_topic(fleet["a"])}"' in page


def test_the_card_shows_the_last_error_beside_the_last_good_status(
    client: Any, people: Any, fleet: Any
) -> None:
    from hosts import ssh  # only this test makes a host unreachable

    refreshed([fleet["a"]], {"photon-a": ssh.HostUnreachable("photon-a: <b>connection refused</b>")})
    client.force_login(people["viewer"])
    body = client.get(reverse("hosts:host_updates", args=[fleet["a"].pk])).content.decode()
    assert 'id="patches-error"' in body and "&lt;b&gt;connection refused&lt;/b&gt;" in body
    assert "<b>connection refused</b>" not in body
    assert 'data-advisory="PHSA-2026-0001"' in body
    row = client.get(reverse("hosts:index")).content.decode()
    assert "patches-error" in row


def test_what_came_from_a_repository_is_escaped(client: Any, people: Any, project: Project) -> None:
    host = make_host(project, "photon-e")
    hostile = Adv(
        # As the XML spells it: the advisory's id read from it is "PHSA-<img src=x onerror=alert(1)>".
        "PHSA-&lt;img src=x onerror=alert(1)&gt;",
        "security",
        "Critical",
        [nevra("openssl-3.0.8-2.ph5")],
        ["CVE-2026-7777"],
    )
    refreshed([host], {"photon-e": HOST_A}, served([hostile]))
    client.force_login(people["viewer"])
    body = client.get(reverse("hosts:host_updates", args=[host.pk])).content.decode()
    assert "<img src=x" not in body and "PHSA-&lt;img src=x onerror=alert(1)&gt;" in body


def test_a_host_never_read_says_so(client: Any, people: Any, project: Project) -> None:
    host = make_host(project, "photon-new")
    client.force_login(people["viewer"])
    body = client.get(reverse("hosts:host_updates", args=[host.pk])).content.decode()
    assert 'id="patches-never"' in body
    row = client.get(reverse("hosts:index")).content.decode()
    assert 'class="p7 patches-none"' in row


# -- Check now: who may ---------------------------------------------------------------------------------


def test_a_provisioner_checks_a_host_now(client: Any, people: Any, fleet: Any, queued: Any) -> None:
    client.force_login(people["provisioner"])
    response = client.post(reverse("hosts:patches_refresh", args=[fleet["a"].pk]))
    assert response.status_code == 302 and response["Location"] == reverse("hosts:host", args=[fleet["a"].pk])
    assert queued == [("hosts.refresh_patch_status", (fleet["a"].pk,))]
    entry = AuditEntry.objects.get(action="host.patches_refresh")
    assert entry.object_id == str(fleet["a"].pk)


@pytest.mark.parametrize(("who", "code"), [("viewer", 403), ("other", 404)])
def test_a_viewer_or_another_projects_member_is_refused(
    client: Any, people: Any, fleet: Any, queued: Any, who: str, code: int
) -> None:
    client.force_login(people[who])
    assert client.post(reverse("hosts:patches_refresh", args=[fleet["a"].pk])).status_code == code
    assert queued == [] and not AuditEntry.objects.filter(action="host.patches_refresh").exists()
    if who == "other":
        assert client.get(reverse("hosts:host_updates", args=[fleet["a"].pk])).status_code == 404


def test_a_forged_id_is_404_and_a_get_is_not_allowed(
    client: Any, people: Any, fleet: Any, queued: Any
) -> None:
    client.force_login(people["admin"])
    assert client.post(reverse("hosts:patches_refresh", args=[987654321])).status_code == 404
    assert client.get(reverse("hosts:host_updates", args=[987654321])).status_code == 404
    assert client.get(reverse("hosts:patches_refresh", args=[fleet["a"].pk])).status_code == 405
    assert queued == []


def test_a_disabled_host_is_not_checked(client: Any, people: Any, fleet: Any, queued: Any) -> None:
    Host.objects.filter(pk=fleet["b"].pk).update(enabled=False)
    client.force_login(people["provisioner"])
    response = client.post(reverse("hosts:patches_refresh", args=[fleet["b"].pk]), follow=True)
    assert "is disabled" in response.content.decode() and queued == []


def test_a_fleet_check_takes_the_hosts_the_person_manages(
    client: Any, people: Any, fleet: Any, queued: Any, project: Project
) -> None:
    make_host(project, "no-address", address="")
    client.force_login(people["manager"])
    assert 'id="patches-refresh-fleet"' in client.get(reverse("hosts:index")).content.decode()
    response = client.post(reverse("hosts:patches_refresh_fleet"), follow=True)
    assert "3 host(s)" in response.content.decode()
    # Not the other project's host, nor the one without an SSH address.
    assert queued == [("hosts.refresh_patch_statuses", ([fleet["a"].pk, fleet["b"].pk, fleet["c"].pk],))]
    assert AuditEntry.objects.filter(action="host.patches_refresh_fleet").count() == 1
    for who in ("provisioner", "viewer"):
        queued.clear()
        client.force_login(people[who])
        response = client.post(reverse("hosts:patches_refresh_fleet"), follow=True)
        assert "No host you manage can be read" in response.content.decode() and queued == []
        assert 'id="patches-refresh-fleet"' not in client.get(reverse("hosts:index")).content.decode()


def test_a_refresh_publishes_the_row_and_the_card(
    people: Any, fleet: Any, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    sent: list[tuple[str, str, Any]] = []
    monkeypatch.setattr(
        "portal.live.publish", lambda topic, html="", data=None, **kw: sent.append((topic, html, data))
    )
    with django_capture_on_commit_callbacks(execute=True):
        refreshed([fleet["b"]], {"photon-b": HOST_A})
    host = fleet["b"]
    by_topic = {topic: (html, data) for topic, html, data in sent}
    row_html = by_topic[f"project:{host.project_id}:hosts"][0]
    assert f'id="patches-{host.pk}"' in row_html and ">Critical 1<" in row_html
    assert by_topic[status.patches_topic(host)][1] == {
        "host": host.pk,
        "read": True,
        "security": {"Critical": 1, "Important": 2},
        "updates": 5,
        "error": "",
    }
    assert HostPatchStatus.objects.get(host=host).critical == 1
    assert len([a for a in ADVISORIES if a.type == "security"]) == 4


# -- the API ------------------------------------------------------------------------------------------


def test_the_api_gives_what_the_card_shows_to_whoever_sees_the_host(people: Any, fleet: Any) -> None:
    url = f"/api/hosts/{fleet['a'].pk}/patches/"
    body = client_for(people["viewer"]).get(url).json()
    assert body["security"] == {"critical": 1, "important": 2, "moderate": 0, "low": 0, "unrated": 0}
    assert body["pending_updates"] == 5 and body["reboot_suggested"] is True
    assert {a["id"] for a in body["advisories"]} == {
        "PHSA-2026-0001",
        "PHSA-2026-0002",
        "PHSA-2026-0003",
        "PHBA-2026-0005",
    }
    critical = next(a for a in body["advisories"] if a["id"] == "PHSA-2026-0001")
    assert critical["cves"] == ["CVE-2026-0001", "CVE-2026-0002"]
    assert critical["packages"] == [
        {"name": "openssl", "arch": "x86_64", "installed": "3.0.8-1.ph5", "fixed": "3.0.8-2.ph5"}
    ]
    # Another project's host, and a forged id: as if they did not exist.
    for pk in (fleet["x"].pk, 10**9):
        assert client_for(people["viewer"]).get(f"/api/hosts/{pk}/patches/").status_code == 404
