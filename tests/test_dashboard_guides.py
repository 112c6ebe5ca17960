"""The dashboard guides (issue 14, findings 7 and 9): an Admin's first steps tick
themselves off; every area has a card that says what to do when empty; changes waiting
for my approval show in the header; the header marks the section a page is in."""

from __future__ import annotations

import re

import pytest

from hosts.models import Host, ProvisionQuota, VCenter
from hosts.models.changes import Change, ChangeStatus, Drift, DriftState, Profile
from portal.models import Project, Role
from registry.models import Registry

pytestmark = pytest.mark.django_db
WAITING = ChangeStatus.AWAITING_APPROVAL


def steps(html: str) -> dict[str, bool]:
    block = html[html.index('id="first-steps"') :]
    block = block[: block.index("</ol>")]
    found = re.findall(
        r'<li class="(is-done)?">\s*<span class="step-mark"[^>]*>[^<]*</span>\s*(?:<a [^>]*>|<span>)([^<]+)<',
        block,
    )
    return {label: done == "is-done" for done, label in found}


def test_an_admins_first_steps_tick_themselves_off_then_step_aside(client, make_user) -> None:
    admin = make_user("root", admin=True)
    client.force_login(admin)
    first = steps(client.get("/").content.decode())
    assert first == {
        "Create a project": False,
        "Add a vCenter": False,
        "Add a host": False,
        "Add a registry": False,
        "Let a project provision hosts": False,
        "Add people to a project": False,
    }
    lab = Project.objects.create(name="Lab")
    vcenter = VCenter.objects.create(name="vc", url="https://vc.example", username="u", password="p")
    Host.objects.create(project=lab, name="h1", docker_url="tcp://192.0.2.1:2376")
    later = steps(client.get("/").content.decode())
    assert later["Create a project"] and later["Add a vCenter"] and later["Add a host"]
    assert not later["Add a registry"] and not later["Let a project provision hosts"]

    Registry.objects.create(name="r", url="https://r.example")
    ProvisionQuota.objects.create(project=lab).vcenters.add(vcenter)
    make_user("ann", project=lab, role=Role.VIEWER)
    assert 'id="first-steps"' not in client.get("/").content.decode()


def test_only_admins_get_first_steps(client, make_user) -> None:
    lab = Project.objects.create(name="Lab")
    client.force_login(make_user("pa", project=lab, role=Role.PROJECT_ADMIN))
    assert 'id="first-steps"' not in client.get("/").content.decode()


def test_every_card_says_what_to_do_when_its_area_is_empty(client, make_user) -> None:
    client.force_login(make_user("root", admin=True))
    html = client.get("/").content.decode()
    for card in ("card-hosts", "card-vsphere", "card-changes", "card-registries"):
        assert f'id="{card}"' in html, card
    assert "No vCenter yet." in html and 'href="/hosts/vsphere/vcenters/add/"' in html
    assert "No registry yet." in html and 'href="/registries/add/"' in html
    assert "No hosts yet." in html and 'href="/hosts/add/"' in html


def test_a_person_in_no_project_is_told_so_and_sees_no_empty_cards(client, make_user) -> None:
    client.force_login(make_user("loner"))
    html = client.get("/").content.decode()
    assert "You are not a member of any project yet" in html
    assert 'id="card-vsphere"' not in html and 'id="card-changes"' not in html
    assert 'id="card-registries"' not in html


def test_the_changes_card_counts_what_waits_and_what_drifted_in_my_projects_only(client, make_user) -> None:
    lab, other = Project.objects.create(name="Lab"), Project.objects.create(name="Other")
    pa = make_user("pa", project=lab, role=Role.PROJECT_ADMIN)
    for project in (lab, other, other):
        Change.objects.create(
            project=project, title="t", status=ChangeStatus.AWAITING_APPROVAL, created_by=pa
        )
    host = Host.objects.create(project=lab, name="h1", docker_url="tcp://192.0.2.1:2376")
    profile = Profile.objects.create(project=lab, name="sshd")
    Drift.objects.create(host=host, profile=profile, state=DriftState.DRIFTED)
    client.force_login(pa)
    html = client.get("/").content.decode()
    card = html[html.index('id="card-changes"') :]
    assert "1 waits for your approval" in card and "1 host drifted" in card and "h1 drifted from" in card
    # And the card read again alone (after a live event) says the same, for this user.
    again = client.get("/dashboard/cards/changes/", headers={"HX-Request": "true"})
    assert again.status_code == 200 and "1 waits for your approval" in again.content.decode()


def test_the_approvals_badge_counts_only_what_i_may_approve_and_is_live(client, make_user) -> None:
    lab, other = Project.objects.create(name="Lab"), Project.objects.create(name="Other")
    pa = make_user("pa", project=lab, role=Role.PROJECT_ADMIN)
    provisioner = make_user("prov", project=lab, role=Role.PROVISIONER)
    Change.objects.create(
        project=lab, title="a", status=ChangeStatus.AWAITING_APPROVAL, created_by=provisioner
    )
    Change.objects.create(project=other, title="b", status=ChangeStatus.AWAITING_APPROVAL)
    client.force_login(pa)
    html = client.get("/hosts/").content.decode()
    badge = re.search(
        r'<span class="badge badge-orange nav-badge" id="badge-approvals"[^>]*>(\d+)</span>', html
    )
    assert badge and badge[1] == "1"
    assert f'data-live-topics="project:{lab.pk}:approvals"' in html
    Change.objects.create(
        project=lab, title="c", status=ChangeStatus.AWAITING_APPROVAL, created_by=provisioner
    )
    again = client.get("/nav/badges/approvals/").content.decode()
    assert ">2</span>" in again and "2 change(s) wait for your approval" in again
    # A Provisioner approves nothing: the badge is there (subscribed) but empty and hidden.
    client.force_login(provisioner)
    mine = client.get("/hosts/").content.decode()
    assert 'class="badge badge-orange nav-badge is-empty" id="badge-approvals"' in mine
    assert 'data-live-topics=""' in mine


def test_unknown_cards_and_badges_are_404_and_signed_out_people_are_sent_to_sign_in(
    client, make_user
) -> None:
    assert client.get("/dashboard/cards/hosts/").status_code == 302
    client.force_login(make_user("loner"))
    assert client.get("/dashboard/cards/nope/").status_code == 404
    assert client.get("/nav/badges/nope/").status_code == 404
    # A card with nothing for this person (no project) is no card.
    assert client.get("/dashboard/cards/changes/").status_code == 404


@pytest.mark.parametrize(
    ("path", "section"),
    [
        ("/", "Dashboard"),
        ("/hosts/", "Hosts"),
        ("/hosts/vsphere/", "vSphere"),
        ("/hosts/vsphere/vcenters/", "vSphere"),
        ("/hosts/changes/", "Changes"),
        ("/hosts/provision/", "Provisioning"),
        ("/registries/", "Registries"),
        ("/work/approvals/", "My work"),
        ("/projects/", "Projects"),
    ],
)
def test_the_header_marks_the_section_a_page_is_in(client, make_user, path, section) -> None:
    client.force_login(make_user("root", admin=True))
    html = client.get(path).content.decode()
    current = re.findall(r'class="nav-link[^"]* active" aria-current="page"[^>]*>([^<]+)<', html)
    assert [c.strip() for c in current] == [section]


def test_the_live_indicator_starts_by_saying_it_is_connecting_not_live(client, make_user) -> None:
    client.force_login(make_user("root", admin=True))
    html = client.get("/").content.decode()
    assert re.search(
        r'id="live-status" data-state="connecting"[^>]*>.*<span class="live-label">Connecting</span>', html
    )
