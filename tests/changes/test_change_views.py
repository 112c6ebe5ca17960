"""Who may see, plan, approve and apply changes; bad input gets a message, not a 500."""

from __future__ import annotations

import pytest

from hosts.changes import approval, render
from hosts.models import Change, ChangeRun, Host, Profile
from portal.models import AuditEntry, Project, Role


@pytest.fixture
def setup(db, make_user):  # type: ignore[no-untyped-def]
    project = Project.objects.create(name="fleet")
    other = Project.objects.create(name="elsewhere")
    host = Host.objects.create(
        project=project, name="h1", docker_url="tcp://10.0.0.1:2376", address="10.0.0.1"
    )
    profile = Profile.objects.create(project=project, name="p", settings={"sshd": {"MaxAuthTries": 3}})
    profile.hosts.add(host)
    change = Change.objects.create(
        project=project, title="t", settings=profile.settings, status="awaiting_approval"
    )
    ChangeRun.objects.create(
        change=change, host=host, files=[{"path": "/x", "diff": "+<script>x</script>\n"}]
    )
    users = {
        "admin": make_user("pa", project=project, role=Role.PROJECT_ADMIN),
        "prov": make_user("prov", project=project, role=Role.PROVISIONER),
        "viewer": make_user("viewer", project=project, role=Role.VIEWER),
        "stranger": make_user("stranger", project=other, role=Role.PROJECT_ADMIN),
    }
    return project, host, profile, change, users


def test_outsiders_get_404_viewers_see_but_cannot_act(client, setup) -> None:
    _project, _host, profile, change, users = setup
    client.force_login(users["stranger"])
    assert client.get(f"/hosts/changes/{change.pk}/").status_code == 404
    assert client.post(f"/hosts/changes/{change.pk}/approve/").status_code == 404
    assert client.post(f"/hosts/changes/profiles/{profile.pk}/plan/").status_code == 404
    # Nothing of the other project's change or host: not "h1" anywhere, which a random
    # CSRF token on the page may hold (this failed by chance once).
    listing = client.get("/hosts/changes/").content.decode()
    assert f"/hosts/changes/{change.pk}/" not in listing and ">h1<" not in listing

    client.force_login(users["viewer"])
    page = client.get(f"/hosts/changes/{change.pk}/").content.decode()
    assert "&lt;script&gt;x&lt;/script&gt;" in page and "<script>x</script>" not in page
    assert 'id="approve"' not in page and 'id="apply"' not in page
    assert client.post(f"/hosts/changes/{change.pk}/approve/").status_code == 403
    assert client.post(f"/hosts/changes/{change.pk}/apply/", {"confirm": "yes"}).status_code == 403
    assert client.post(f"/hosts/changes/profiles/{profile.pk}/plan/").status_code == 403
    assert client.get(f"/hosts/changes/{change.pk}/approve/").status_code == 405


def test_the_page_can_reread_its_host_cards(client, setup) -> None:
    # Events a page missed are replayed (portal.replay); when they are no longer kept the
    # page asks for its cards again (data-reread-url), through the same access check.
    _project, _host, _profile, change, users = setup
    client.force_login(users["viewer"])
    page = client.get(f"/hosts/changes/{change.pk}/").content.decode()
    assert f'data-reread-url="/hosts/changes/{change.pk}/?runs=1"' in page
    cards = client.get(f"/hosts/changes/{change.pk}/?runs=1").content.decode()
    assert 'data-host="h1"' in cards and "<h2>" not in cards
    assert "&lt;script&gt;x&lt;/script&gt;" in cards and "<script>x</script>" not in cards
    client.force_login(users["stranger"])
    assert client.get(f"/hosts/changes/{change.pk}/?runs=1").status_code == 404


def test_a_provisioners_plan_waits_for_a_project_admin(client, setup) -> None:
    _project, _host, _profile, change, users = setup
    client.force_login(users["prov"])
    page = client.get(f"/hosts/changes/{change.pk}/").content.decode()
    assert 'id="approve"' not in page and 'id="apply"' not in page
    assert client.post(f"/hosts/changes/{change.pk}/approve/").status_code == 403
    assert not approval.may_apply(change, users["prov"])

    client.force_login(users["admin"])
    assert 'id="approve"' in client.get(f"/hosts/changes/{change.pk}/").content.decode()
    response = client.post(f"/hosts/changes/{change.pk}/approve/", follow=True)
    assert response.status_code == 200
    change.refresh_from_db()
    assert change.status == "approved" and change.approved_by == users["admin"]
    assert AuditEntry.objects.filter(action="change.approve", object_id=str(change.pk)).exists()
    # Applying without ticking the confirmation box changes nothing.
    response = client.post(f"/hosts/changes/{change.pk}/apply/", follow=True)
    assert "Tick the box" in response.content.decode()
    change.refresh_from_db()
    assert change.status == "approved"


def test_profile_form_refuses_bad_values_and_insecure_docker_for_non_admins(client, setup) -> None:
    project, host, _profile, _change, users = setup
    client.force_login(users["admin"])
    base = {"project": project.pk, "name": "new"}
    response = client.post("/hosts/changes/profiles/new/", {**base, "open_ports": "tcp/99999"})
    assert response.status_code == 200 and "not a port" in response.content.decode()
    response = client.post("/hosts/changes/profiles/new/", {**base, "docker_api": "insecure"})
    assert "Only an Admin" in response.content.decode()
    response = client.post("/hosts/changes/profiles/new/", {**base, "allow_users": "root,ops"})
    assert "not a user or group name" in response.content.decode()
    response = client.post("/hosts/changes/profiles/new/", {**base, "max_auth_tries": 3, "hosts": [host.pk]})
    assert response.status_code == 302
    saved = Profile.objects.get(name="new")
    assert saved.settings == {"sshd": {"MaxAuthTries": 3}} and list(saved.hosts.all()) == [host]
    response = client.post("/hosts/changes/profiles/new/", {**base, "name": "k", "sysctl": "vm.swappiness"})
    assert "Not “name = value”: vm.swappiness" in response.content.decode()
    response = client.post("/hosts/changes/profiles/new/", {**base, "name": "k", "sysctl": "swap = 1"})
    assert "not a kernel parameter name" in response.content.decode()
    lines = "vm.swappiness = 10\n\nnet.core.somaxconn=1024\n"
    assert (
        client.post("/hosts/changes/profiles/new/", {**base, "name": "k", "sysctl": lines}).status_code == 302
    )
    kernel = Profile.objects.get(name="k")
    assert kernel.settings == {"sysctl": {"vm.swappiness": "10", "net.core.somaxconn": "1024"}}
    edit = client.get(f"/hosts/changes/profiles/{kernel.pk}/").content.decode()
    assert "vm.swappiness = 10\nnet.core.somaxconn = 1024" in edit


def test_lockout_guard_rules() -> None:
    facts = {"sshd": {"PermitRootLogin": "prohibit-password"}, "open_ports": {("tcp", 22)}}
    assert render.lockout_reasons(facts, user="root", port=22) == []
    assert render.lockout_reasons({**facts, "sshd": {"PermitRootLogin": "no"}}, user="root", port=22)
    assert render.lockout_reasons({**facts, "sshd": {"PermitRootLogin": "no"}}, user="ops", port=22) == []
    assert render.lockout_reasons({**facts, "sshd": {"AllowUsers": "op*"}}, user="ops", port=22) == []
    assert render.lockout_reasons(
        {**facts, "sshd": {"AllowGroups": "wheel"}}, user="ops", port=22, groups=["ops"]
    )
    assert (
        render.lockout_reasons(
            {**facts, "sshd": {"AllowGroups": "wheel"}}, user="ops", port=22, groups=["wheel"]
        )
        == []
    )
    assert render.lockout_reasons({**facts, "sshd": {"Port": "2222"}}, user="root", port=22)
    assert render.lockout_reasons({**facts, "sshd": {"PubkeyAuthentication": "no"}}, user="root", port=22)


def test_the_drift_check_runs_as_a_watcher() -> None:
    from portal.watchers import WATCHERS

    assert "drift" in WATCHERS


def test_the_second_read_brings_the_status_the_plan_ended_in(client, setup) -> None:
    # The plan may end before the page subscribes: its status, published to nobody, comes
    # with the cards (swapped in out of band), not only the cards.
    _project, _host, _profile, change, users = setup
    change.status = "awaiting_approval"
    change.save(update_fields=["status"])
    client.force_login(users["viewer"])
    cards = client.get(f"/hosts/changes/{change.pk}/?runs=1").content.decode()
    summary = cards.split(f'id="change-{change.pk}-summary"', 1)[1].split(">", 1)[0]
    assert 'hx-swap-oob="true"' in summary and 'data-status="awaiting_approval"' in summary
    assert ">Awaiting approval</span>" in cards
