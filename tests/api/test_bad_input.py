"""Bad input to the API gets a 4xx with a message, and changes nothing."""

from __future__ import annotations

import pytest

from hosts.models import Host
from hosts.models.changes import Change, Profile
from portal.models import ApiToken, Project, Role
from tests.api.common import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup(make_user):  # type: ignore[no-untyped-def]
    web = Project.objects.create(name="web")
    host = Host.objects.create(project=web, name="photon-01", docker_url="tcp://127.0.0.1:9", enabled=False)
    profile = Profile.objects.create(project=web, name="p", settings={"sshd": {"MaxAuthTries": 3}})
    profile.hosts.add(host)
    return web, host, profile, make_user("pa", project=web, role=Role.PROJECT_ADMIN)


def test_invalid_and_revoked_tokens_get_401_everywhere(setup) -> None:  # type: ignore[no-untyped-def]
    *_, user = setup
    api = client_for(user)
    assert api.get("/api/hosts/").status_code == 200
    ApiToken.objects.update(revoked="2026-01-01T00:00:00Z")
    for url in ("/api/hosts/", "/api/changes/", "/api/registries/", "/api/vms/"):
        assert api.get(url).status_code == 401, url
    api.credentials(HTTP_AUTHORIZATION="Bearer pp_forged")
    assert api.post("/api/profiles/1/plan/", {}, format="json").status_code == 401


def test_paging_past_the_end_unknown_filters_and_bad_values(setup) -> None:  # type: ignore[no-untyped-def]
    *_, user = setup
    api = client_for(user)
    past = api.get("/api/hosts/", {"page": 5})
    assert past.status_code == 404 and "Invalid page" in past.json()["detail"]
    unknown = api.get("/api/changes/", {"colour": "red"})
    assert unknown.status_code == 400 and "colour" in unknown.json()["detail"]
    assert "status" in api.get("/api/hosts/", {"status": "purple"}).json()
    assert "project" in api.get("/api/hosts/", {"project": "web"}).json()
    assert api.get("/api/changes/", {"status": "done"}).status_code == 400
    assert "NUL" in api.get("/api/hosts/", {"q": "a\x00b"}).json()["detail"]  # PostgreSQL would refuse it
    assert api.get("/api/hosts/", {"page_size": "many"}).status_code in {200, 400}


def test_malformed_json_and_wrong_bodies_change_nothing(setup) -> None:  # type: ignore[no-untyped-def]
    _, host, profile, user = setup
    api = client_for(user)
    malformed = api.generic(
        "POST", f"/api/profiles/{profile.pk}/plan/", "{not json", content_type="application/json"
    )
    assert malformed.status_code == 400 and "JSON parse error" in malformed.json()["detail"]
    wrong = api.post(f"/api/profiles/{profile.pk}/plan/", {"hosts": ["x"]}, format="json")
    assert wrong.status_code == 400 and "hosts" in wrong.json()
    stranger = api.post(f"/api/profiles/{profile.pk}/plan/", {"hosts": [host.pk + 1000]}, format="json")
    assert stranger.status_code == 400 and "Not hosts of this profile" in stranger.json()["hosts"][0]
    assert not Change.objects.exists()
    assert api.post(f"/api/hosts/{host.pk}/containers/{'a' * 12}/explode/").status_code == 404
    assert api.put(f"/api/hosts/{host.pk}/", {"name": "x"}, format="json").status_code == 405
    assert Host.objects.get(pk=host.pk).name == "photon-01"


def test_events_carry_their_kind_and_filter_by_it(setup) -> None:  # type: ignore[no-untyped-def]
    from portal.events import notify

    web, host, _, user = setup
    notify("photon-01 is OFF", severity="error", obj=host, project=web, kind="host.off")
    notify("photon-01 enrolled", obj=host, project=web)
    api = client_for(user)
    listed = api.get("/api/events/", {"kind": "host.off"}).json()["results"]
    assert [(e["kind"], e["message"]) for e in listed] == [("host.off", "photon-01 is OFF")]
    assert api.get("/api/events/", {"kind": "host.gone"}).status_code == 400
    assert api.get("/api/events/", {"kind": ""}).status_code == 400  # given, so it must be one
    assert api.get("/api/hosts/", {"project": str(2**63)}).status_code == 400  # past any id: never queried
    assert api.get("/api/hosts/", {"project": "0"}).status_code == 400
    assert api.get("/api/hosts/", {"page_size": "0"}).status_code == 400
    assert api.get("/api/vms/", {"photon": "null"}).status_code == 400
