"""What a script does through the API (issue 20), through the same services as the UI and
with the same refusals: a project's members; adding and verifying a host; deploying a container."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hosts.fleet import services
from hosts.models import Deploy, Host, HostStatus
from portal.api_auth import issue
from portal.models import AuditEntry, Membership, Project, Role
from tests.api.common import client_for
from tests.hosts.conftest import pem

pytestmark = pytest.mark.django_db


@pytest.fixture
def team(make_user) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    web, db = Project.objects.create(name="web"), Project.objects.create(name="db")
    return {
        "web": web,
        "db": db,
        "admin": make_user("root", admin=True),
        "pa": make_user("pa", project=web, role=Role.PROJECT_ADMIN),
        "viewer": make_user("viewer", project=web, role=Role.VIEWER),
        "other": make_user("other", project=db, role=Role.PROJECT_ADMIN),
        "newcomer": make_user("newcomer"),
    }


def members_url(project: Project, membership: Membership | int | None = None) -> str:
    url = f"/api/projects/{project.pk}/members/"
    if membership is not None:
        url += f"{getattr(membership, 'pk', membership)}/"
    return url


# -- members ---------------------------------------------------------------------------------------


def test_a_project_admin_adds_changes_and_removes_a_member_audited_as_the_page(team) -> None:  # type: ignore[no-untyped-def]
    api, web = client_for(team["pa"]), team["web"]
    added = api.post(members_url(web), {"username": "newcomer", "role": "viewer"}, format="json")
    assert added.status_code == 201, added.content
    membership = Membership.objects.get(project=web, user=team["newcomer"])
    assert added.json() == {"id": membership.pk, "project": web.pk, "username": "newcomer", "role": "viewer"}

    listed = api.get(members_url(web)).json()
    assert [(m["username"], m["role"]) for m in listed["results"]] == [
        ("newcomer", "viewer"),
        ("pa", "project_admin"),
        ("viewer", "viewer"),
    ]
    assert api.get(members_url(web, membership)).json()["username"] == "newcomer"

    changed = api.patch(members_url(web, membership), {"role": "provisioner"}, format="json")
    assert changed.status_code == 200 and changed.json()["role"] == "provisioner"
    assert Membership.objects.get(pk=membership.pk).role == Role.PROVISIONER

    removed = api.delete(members_url(web, membership))
    assert removed.status_code == 200 and removed.json() == {"detail": "newcomer removed from web."}
    assert not Membership.objects.filter(pk=membership.pk).exists()
    assert team["newcomer"].__class__.objects.filter(username="newcomer").exists()  # the person stays

    trail = list(AuditEntry.objects.filter(action__startswith="project.member").order_by("pk"))
    assert [(e.action, e.actor_name, e.project_name) for e in trail] == [
        ("project.member_add", "pa", "web"),
        ("project.member_role", "pa", "web"),
        ("project.member_remove", "pa", "web"),
    ]
    assert trail[1].before == {"user": "newcomer", "role": "viewer"}
    assert trail[1].after == {"user": "newcomer", "role": "provisioner"}
    assert trail[2].before == {"user": "newcomer", "role": "provisioner"}


@pytest.mark.parametrize("who", ["pa", "admin"])
def test_the_api_never_makes_people(team, who: str) -> None:  # type: ignore[no-untyped-def]
    response = client_for(team[who]).post(
        members_url(team["web"]), {"username": "stranger", "role": "viewer"}, format="json"
    )
    assert response.status_code == 400
    assert "No one named stranger can sign in yet" in response.json()["username"][0]
    assert not team["admin"].__class__.objects.filter(username="stranger").exists()
    assert not AuditEntry.objects.filter(action__in=["user.create", "project.member_add"]).exists()


def test_refusals_are_the_project_pages(team) -> None:  # type: ignore[no-untyped-def]
    api, web = client_for(team["pa"]), team["web"]
    again = api.post(members_url(web), {"username": "viewer", "role": "viewer"}, format="json")
    assert again.status_code == 409
    assert again.json() == {"detail": "viewer is already a member; change their role instead."}

    team["newcomer"].is_active = False
    team["newcomer"].save()
    gone = api.post(members_url(web), {"username": "newcomer", "role": "viewer"}, format="json")
    assert gone.status_code == 409
    # A 409 answers detail, as the schema documents it (the page shows it on the field).
    assert gone.json() == {"detail": "newcomer is deactivated: an Admin can activate them again."}

    bad_name = api.post(members_url(web), {"username": "a b", "role": "viewer"}, format="json")
    assert bad_name.status_code == 400
    assert bad_name.json()["username"] == ["A user name is letters, digits and @ . + - _ only."]

    for body in ({"username": "newcomer", "role": "admin"}, {"username": "newcomer"}, {}):
        assert api.post(members_url(web), body, format="json").status_code == 400
    viewer = Membership.objects.get(user=team["viewer"])
    for body in ({"role": "owner"}, {"role": None}, {"role": ""}):
        assert api.patch(members_url(web, viewer), body, format="json").status_code == 400
    unchanged = api.patch(
        members_url(web, viewer), {}, format="json"
    )  # PATCH: nothing given, nothing changed
    assert unchanged.status_code == 200 and unchanged.json()["role"] == "viewer"
    assert Membership.objects.get(pk=viewer.pk).role == Role.VIEWER
    assert api.put(members_url(web, viewer), {"role": "viewer"}, format="json").status_code == 405
    assert api.get(members_url(web) + "?role=viewer").status_code == 400  # no filters: named, refused
    assert not AuditEntry.objects.filter(action__startswith="project.member").exists()


def test_a_viewer_lists_but_may_not_change(team) -> None:  # type: ignore[no-untyped-def]
    api, web = client_for(team["viewer"]), team["web"]
    assert api.get(members_url(web)).json()["count"] == 2
    pa = Membership.objects.get(user=team["pa"])
    # The access check comes first: an invalid body is still a 403, telling nothing.
    assert (
        api.post(members_url(web), {"username": "newcomer", "role": "viewer"}, format="json").status_code
        == 403
    )
    assert api.post(members_url(web), {}, format="json").status_code == 403
    assert api.patch(members_url(web, pa), {"role": "viewer"}, format="json").status_code == 403
    assert api.delete(members_url(web, pa)).status_code == 403
    assert Membership.objects.get(pk=pa.pk).role == Role.PROJECT_ADMIN


def test_another_project_and_forged_ids_are_404(team) -> None:  # type: ignore[no-untyped-def]
    api, web, db = client_for(team["pa"]), team["web"], team["db"]
    theirs = Membership.objects.get(user=team["other"])
    ours = Membership.objects.get(user=team["viewer"])
    assert api.get(members_url(db)).status_code == 404
    assert (
        api.post(members_url(db), {"username": "newcomer", "role": "viewer"}, format="json").status_code
        == 404
    )
    assert api.patch(members_url(db, theirs), {"role": "viewer"}, format="json").status_code == 404
    assert api.delete(members_url(db, theirs)).status_code == 404
    # Another project's membership through one's own project: no such member here.
    assert api.patch(members_url(web, theirs), {"role": "viewer"}, format="json").status_code == 404
    assert api.delete(members_url(web, theirs)).status_code == 404
    for forged in ("0", "-1", "abc", str(2**63), "999999"):
        assert api.get(f"/api/projects/{forged}/members/").status_code == 404, forged
        assert api.delete(f"/api/projects/{web.pk}/members/{forged}/").status_code == 404, forged
    assert api.delete(members_url(web, ours)).status_code == 200
    assert Membership.objects.filter(pk=theirs.pk).exists()


def test_a_read_only_or_other_project_token_changes_no_member(team) -> None:  # type: ignore[no-untyped-def]
    body = {"username": "newcomer", "role": "viewer"}
    _, read_only = issue(team["pa"], "ro", read_only=True)
    _, elsewhere = issue(team["admin"], "db only", project=team["db"])
    api = client_for(None)
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {read_only}")
    assert api.get(members_url(team["web"])).status_code == 200
    assert api.post(members_url(team["web"]), body, format="json").status_code == 403
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {elsewhere}")
    assert api.post(members_url(team["web"]), body, format="json").status_code == 404
    assert not Membership.objects.filter(user=team["newcomer"]).exists()


# -- adding and verifying a host ------------------------------------------------------------------------


def host_body(engine_info: dict[str, Any], project: Project, **overrides: Any) -> dict[str, Any]:
    body = {
        "project": project.pk,
        "name": "photon-01",
        "docker_url": engine_info["url"],
        "tls_ca": pem(engine_info, "ca"),
        "tls_client_cert": pem(engine_info, "cert"),
        "tls_client_key": pem(engine_info, "key"),
        "tags": ["prod", "web"],
    }
    return body | overrides


def no_secret_in(response: Any) -> None:
    text = response.content.decode()
    assert "PRIVATE KEY" not in text and "tls_client_key" not in text and "ssh_private_key" not in text


def test_verify_then_add_pins_the_confirmed_certificate(people, project, tls_engine, no_env_ca) -> None:  # type: ignore[no-untyped-def]
    api = client_for(people["manager"])
    verified = api.post("/api/hosts/verify/", host_body(tls_engine, project), format="json")
    assert verified.status_code == 200, verified.content
    report = verified.json()
    assert report["facts"]["engine_version"].startswith("20.10") and report["facts"]["containers_total"] == 5
    assert report["host_key"] is None and report["matches_pinned"] is None
    fingerprint = report["certificate"]["fingerprint"]
    no_secret_in(verified)
    assert not Host.objects.exists()  # verify saves nothing

    unconfirmed = api.post(
        "/api/hosts/", host_body(tls_engine, project, tls_fingerprint=fingerprint), format="json"
    )
    assert unconfirmed.status_code == 400
    assert unconfirmed.json() == {
        "trust_certificate": ["Confirm that you trust this certificate to save the host."]
    }
    unverified = api.post(
        "/api/hosts/", host_body(tls_engine, project, trust_certificate=True), format="json"
    )
    assert unverified.json() == {"detail": "Verify the endpoint first, then confirm its certificate."}
    assert not Host.objects.exists()

    added = api.post(
        "/api/hosts/",
        host_body(tls_engine, project, tls_fingerprint=fingerprint, trust_certificate=True),
        format="json",
    )
    assert added.status_code == 201, added.content
    no_secret_in(added)
    host = Host.objects.get()
    assert added.json()["id"] == host.pk and added.json()["tags"] == ["prod", "web"]
    assert (
        host.tls_fingerprint == fingerprint and host.status == HostStatus.ON and host.containers_running == 2
    )
    assert str(host.tls_client_key).strip() == pem(tls_engine, "key").strip()
    entry = AuditEntry.objects.get(action="host.add")
    assert (entry.actor_name, entry.object_id) == ("manager", str(host.pk))
    assert "PRIVATE KEY" not in str(entry.after)

    again = api.post(f"/api/hosts/{host.pk}/verify/", format="json")
    assert again.status_code == 200 and again.json()["matches_pinned"] is True
    assert again.json()["certificate"]["fingerprint"] == fingerprint
    no_secret_in(again)

    twice = api.post(
        "/api/hosts/",
        host_body(tls_engine, project, tls_fingerprint=fingerprint, trust_certificate=True),
        format="json",
    )
    assert twice.status_code == 400 and "already exists" in twice.json()["detail"], twice.json()
    assert Host.objects.count() == 1


def test_a_changed_certificate_is_refused_with_the_engines_answer(
    people, project, tls_engine, no_env_ca
) -> None:  # type: ignore[no-untyped-def]
    wrong = "AB:" * 31 + "AB"
    body = host_body(tls_engine, project, tls_fingerprint=wrong, trust_certificate=True)
    response = client_for(people["manager"]).post("/api/hosts/", body, format="json")
    assert response.status_code == 502 and "different certificate" in response.json()["detail"]
    assert not Host.objects.exists() and not AuditEntry.objects.filter(action="host.add").exists()


def test_bad_material_is_the_callers_400_not_the_engines_502(people, project, tls_engine, no_env_ca) -> None:  # type: ignore[no-untyped-def]
    api = client_for(people["manager"])
    response = api.post(
        "/api/hosts/verify/", host_body(tls_engine, project, tls_client_key="nope"), format="json"
    )
    assert response.status_code == 400
    assert response.json() == {"detail": "The client key is not an unencrypted PEM private key."}
    no_secret_in(response)
    assert api.post(
        "/api/hosts/verify/", host_body(tls_engine, project, docker_url="http://x"), format="json"
    ).json()["docker_url"]
    bad_tag = api.post("/api/hosts/verify/", host_body(tls_engine, project, tags=["a;b"]), format="json")
    assert bad_tag.status_code == 400 and "tags" in bad_tag.json()


def test_a_plain_endpoint_needs_an_admin(people, project, lab_engines) -> None:  # type: ignore[no-untyped-def]
    plain_engine = next(e for e in lab_engines if not e["tls"])
    body = {
        "project": project.pk,
        "name": "photon-plain",
        "docker_url": plain_engine["url"],
        "insecure": True,
    }
    refused = client_for(people["manager"]).post("/api/hosts/", body, format="json")
    assert refused.status_code == 400 and "unless an Admin ticks" in refused.json()["docker_url"][0]
    assert not Host.objects.exists()
    added = client_for(people["admin"]).post("/api/hosts/", body, format="json")
    assert added.status_code == 201, added.content
    assert Host.objects.get().insecure and added.json()["tls_fingerprint"] == ""


def test_who_may_add_and_verify_hosts(people, project, tls_engine, make_user) -> None:  # type: ignore[no-untyped-def]
    other = Project.objects.create(name="Team B")
    theirs = Host.objects.create(
        project=other, name="photon-b", docker_url="tcp://127.0.0.1:9", enabled=False
    )
    ours = Host.objects.create(
        project=project, name="photon-a", docker_url="tcp://127.0.0.1:9", enabled=False
    )
    elsewhere = make_user("elsewhere", project=other, role=Role.PROJECT_ADMIN)
    body = host_body(tls_engine, project)
    for who in ("viewer", "provisioner", "outsider"):
        api = client_for(people[who])
        assert api.post("/api/hosts/", body, format="json").status_code == 403, who
        assert api.post("/api/hosts/verify/", {}, format="json").status_code == 403, who
    assert client_for(people["viewer"]).post(f"/api/hosts/{ours.pk}/verify/").status_code == 403
    # A Project admin elsewhere: this project's hosts are not theirs to add; existing or not,
    # a project named in the body is a 403 (nothing learnt about it), a host in a path a 404.
    api = client_for(elsewhere)
    assert api.post("/api/hosts/", body, format="json").status_code == 403
    assert api.post("/api/hosts/", body | {"project": 999999}, format="json").status_code == 403
    assert api.post(f"/api/hosts/{ours.pk}/verify/").status_code == 404
    manager = client_for(people["manager"])
    assert manager.post(f"/api/hosts/{theirs.pk}/verify/").status_code == 404
    for forged in ("0", "abc", str(2**63), "999999"):
        assert manager.post(f"/api/hosts/{forged}/verify/").status_code == 404, forged
    assert Host.objects.count() == 2
    assert not AuditEntry.objects.filter(action="host.add").exists()


# -- deploying a container ---------------------------------------------------------------------------


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """The deploy task is queued, not run: what the API answers is the subject here."""
    sent: list[tuple[Any, ...]] = []
    monkeypatch.setattr(services, "enqueue", lambda task, *args, **kwargs: sent.append((task.name, *args)))
    return sent


def test_a_provisioner_deploys_and_follows_the_deploy(people, project, queued) -> None:  # type: ignore[no-untyped-def]
    host = Host.objects.create(project=project, name="photon-a", docker_url="tcp://127.0.0.1:9")
    api = client_for(people["provisioner"])
    body = {
        "image": "lab/busybox:1.35",
        "name": "web-1",
        "command": "sleep 3600",
        "environment": {"PASSWORD": "s3cret-value", "MODE": "prod", "CERT": "line 1\nline 2"},
        "ports": [{"host": 8080, "container": 80}, {"host": 5353, "container": 53, "protocol": "udp"}],
        "restart_policy": "unless-stopped",
    }
    response = api.post(f"/api/hosts/{host.pk}/deploy/", body, format="json")
    assert response.status_code == 202, response.content
    deploy = Deploy.objects.get()
    answer = response.json()
    assert answer["id"] == deploy.pk and answer["state"] == "queued" and answer["host"] == host.pk
    assert answer["url"] == f"/api/hosts/{host.pk}/deploys/{deploy.pk}/"
    assert answer["spec"] == {
        "image": "lab/busybox:1.35",
        "name": "web-1",
        "command": "sleep 3600",
        "ports": {"80/tcp": 8080, "53/udp": 5353},
        "restart_policy": "unless-stopped",
        "network": "bridge",
    }
    assert "s3cret-value" not in response.content.decode()
    assert queued == [("hosts.deploy_container", deploy.pk)]
    entry = AuditEntry.objects.get(action="container.deploy")
    assert entry.actor_name == "prov" and entry.after["environment_keys"] == ["CERT", "MODE", "PASSWORD"]
    # Values are handed over whole (a line break included), encrypted on the deploy's row.
    assert json.loads(str(deploy.environment))["CERT"] == "line 1\nline 2"
    assert "s3cret-value" not in str(entry.after)

    followed = api.get(answer["url"])
    assert followed.status_code == 200 and followed.json() == answer
    assert "s3cret-value" not in followed.content.decode()

    pull = api.post(
        f"/api/hosts/{host.pk}/deploy/", {"image": "lab/busybox:1.35", "pull_only": True}, format="json"
    )
    assert pull.status_code == 202 and pull.json()["spec"]["pull_only"] is True
    assert AuditEntry.objects.filter(action="image.pull").count() == 1


def test_deploy_refusals_are_the_pages(people, project, queued) -> None:  # type: ignore[no-untyped-def]
    host = Host.objects.create(project=project, name="photon-a", docker_url="tcp://127.0.0.1:9")
    api, url = client_for(people["provisioner"]), f"/api/hosts/{host.pk}/deploy/"
    for body, field in (
        ({"image": "NOT an image"}, "image"),
        ({"image": "lab/busybox:1.35", "name": "-x"}, "name"),
        ({"image": "lab/busybox:1.35\n"}, "image"),
        ({"image": "lab/busybox:1.35", "ports": [{"host": 80, "container": 99999}]}, "ports"),
        ({"image": "lab/busybox:1.35", "ports": ["80:80"]}, "ports"),
        ({"image": "lab/busybox:1.35", "environment": {"1BAD": "x"}}, "environment"),
        ({"image": "lab/busybox:1.35", "restart_policy": "sometimes"}, "restart_policy"),
        ({"image": "lab/busybox:1.35", "network": "overlay"}, "network"),
        ({}, "image"),
    ):
        response = api.post(url, body, format="json")
        assert response.status_code == 400 and field in response.json(), (body, response.json())
    host.enabled = False
    host.save()
    disabled = api.post(url, {"image": "lab/busybox:1.35"}, format="json")
    assert disabled.status_code == 409
    assert disabled.json() == {"detail": "Host photon-a is disabled: enable it first."}
    host.enabled, host.status = True, HostStatus.OFF
    host.save()
    off = api.post(url, {"image": "lab/busybox:1.35"}, format="json")
    assert off.status_code == 409 and "is off" in off.json()["detail"]
    assert not Deploy.objects.exists() and not queued
    assert not AuditEntry.objects.filter(action__in=["container.deploy", "image.pull"]).exists()


def test_who_may_deploy_and_read_deploys(people, project, queued, make_user) -> None:  # type: ignore[no-untyped-def]
    other = Project.objects.create(name="Team B")
    ours = Host.objects.create(project=project, name="photon-a", docker_url="tcp://127.0.0.1:9")
    theirs = Host.objects.create(project=other, name="photon-b", docker_url="tcp://127.0.0.1:9")
    mine = Deploy.objects.create(host=ours, actor=people["admin"], token="t1", spec={"image": "a"})
    elsewhere = Deploy.objects.create(host=theirs, actor=people["admin"], token="t2", spec={"image": "b"})
    body = {"image": "lab/busybox:1.35"}
    viewer = client_for(people["viewer"])
    assert viewer.post(f"/api/hosts/{ours.pk}/deploy/", body, format="json").status_code == 403
    assert viewer.post(f"/api/hosts/{ours.pk}/deploy/", {}, format="json").status_code == 403
    assert viewer.get(f"/api/hosts/{ours.pk}/deploys/{mine.pk}/").status_code == 200
    outsider = client_for(make_user("b-admin", project=other, role=Role.PROJECT_ADMIN))
    assert outsider.post(f"/api/hosts/{ours.pk}/deploy/", body, format="json").status_code == 404
    assert outsider.get(f"/api/hosts/{ours.pk}/deploys/{mine.pk}/").status_code == 404
    prov = client_for(people["provisioner"])
    assert prov.post(f"/api/hosts/{theirs.pk}/deploy/", body, format="json").status_code == 404
    # Another host's deploy through one's own host: no such deploy here.
    assert prov.get(f"/api/hosts/{ours.pk}/deploys/{elsewhere.pk}/").status_code == 404
    for forged in ("0", "abc", str(2**63), "999999"):
        assert prov.post(f"/api/hosts/{forged}/deploy/", body, format="json").status_code == 404, forged
        assert prov.get(f"/api/hosts/{ours.pk}/deploys/{forged}/").status_code == 404, forged
    assert Deploy.objects.count() == 2 and not queued
