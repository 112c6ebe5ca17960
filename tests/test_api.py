"""The REST API: personal tokens, the same access rules as the UI, paging and clear 4xx."""

from __future__ import annotations

import re

import pytest
from rest_framework.test import APIClient

from portal import audit
from portal.api_auth import digest
from portal.api_urls import router
from portal.events import notify
from portal.models import ApiToken, Project, Role

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(make_user):  # type: ignore[no-untyped-def]
    web, db = Project.objects.create(name="web"), Project.objects.create(name="db")
    people = {
        "admin": make_user("admin", admin=True),
        "viewer": make_user("viewer", project=web, role=Role.VIEWER),
        "provisioner": make_user("provisioner", project=web, role=Role.PROVISIONER),
        "project_admin": make_user("pa", project=web, role=Role.PROJECT_ADMIN),
        "other_project_admin": make_user("other", project=db, role=Role.PROJECT_ADMIN),
    }
    audit.record("host.add", project=web, actor=people["project_admin"], obj=web)
    audit.record("host.add", project=db, actor=people["other_project_admin"], obj=db)
    notify("web host OFF", severity="error", project=web)
    notify("db host OFF", severity="error", project=db)
    return {"web": web, "db": db, **people}


def token_for(client, user) -> str:  # type: ignore[no-untyped-def]
    client.force_login(user)
    response = client.post("/account/tokens/", {"name": "script", "days": 90, "read_only": "0"})
    client.logout()
    return response.context["new_token"]


def api(token: str | None = None) -> APIClient:
    client = APIClient()
    if token:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def test_a_token_is_shown_once_and_kept_only_as_a_digest(client, world) -> None:
    token = token_for(client, world["viewer"])
    stored = ApiToken.objects.get(user=world["viewer"])
    assert token.startswith("pp_") and stored.digest == digest(token) and token not in str(stored.__dict__)
    client.force_login(world["viewer"])
    assert token.encode() not in client.get("/account/tokens/").content
    assert api(token).get("/api/projects/").status_code == 200


def test_missing_invalid_and_revoked_tokens_get_401(client, world) -> None:
    missing = api().get("/api/projects/")
    assert missing.status_code == 401 and missing["WWW-Authenticate"].startswith("Bearer")
    assert api("pp_not-a-token").get("/api/projects/").status_code == 401
    assert api("garbage").get("/api/projects/").status_code == 401
    token = token_for(client, world["viewer"])
    client.force_login(world["viewer"])
    client.post(f"/account/tokens/{ApiToken.objects.get().pk}/revoke/")
    assert api(token).get("/api/projects/").status_code == 401
    world["viewer"].is_active = False
    world["viewer"].save()
    assert api(token_for(client, world["admin"])).get("/api/projects/").status_code == 200


def names(response, key: str) -> set[str]:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.content
    return {row[key] for row in response.json()["results"]}


@pytest.mark.parametrize(
    ("who", "projects", "audit_projects", "events"),
    [
        ("admin", {"web", "db"}, {"web", "db", ""}, {"web host OFF", "db host OFF"}),
        ("viewer", {"web"}, {"web", ""}, {"web host OFF"}),
        ("provisioner", {"web"}, {"web", ""}, {"web host OFF"}),
        ("project_admin", {"web"}, {"web", ""}, {"web host OFF"}),
        ("other_project_admin", {"db"}, {"db", ""}, {"db host OFF"}),
    ],
)
def test_each_role_sees_what_the_ui_shows_it(client, world, who, projects, audit_projects, events) -> None:
    client_api = api(token_for(client, world[who]))
    assert names(client_api.get("/api/projects/"), "name") == projects
    assert names(client_api.get("/api/audit/"), "project") == audit_projects
    assert names(client_api.get("/api/events/"), "message") == events
    hidden = world["db"] if "web" in projects else world["web"]
    if who != "admin":
        assert client_api.get(f"/api/projects/{hidden.pk}/").status_code == 404


def test_every_registered_endpoint_refuses_anonymous_and_nothing_writes_the_trail(client, world) -> None:
    for prefix, _, _ in router.registry:
        # A nested route's prefix holds its parent's id as a pattern: any id will do here.
        path = re.sub(r"\(\?P<\w+>[^)]*\)", "1", prefix)
        assert api().get(f"/api/{path}/").status_code == 401, prefix
    admin = api(token_for(client, world["admin"]))
    entry = admin.get("/api/audit/").json()["results"][0]
    for method in ("put", "patch", "delete"):
        assert (
            getattr(admin, method)(f"/api/audit/{entry['id']}/", {"action": "x"}, format="json").status_code
            == 405
        )
    assert admin.post("/api/audit/", {"action": "x"}, format="json").status_code == 405


def test_every_route_and_method_refuses_anonymous_callers(client, world) -> None:
    """Each route of the router (details, nested routes and actions too, e.g. a provisioning
    request's VM cancel), with each method it answers: 401 before anything is looked up."""
    walked = set()
    for url in router.urls:
        # A copy: a viewset's dispatch adds its methods' aliases (head) to the mapping.
        methods = list(getattr(url.callback, "actions", None) or {"get": "api_root"})
        path = re.sub(r"\(\?P<\w+>[^)]*\)", "1", str(url.pattern)).strip("^$")
        for method in methods:
            response = getattr(api(), method)(f"/api/{path}", {}, format="json")
            assert response.status_code == 401, (method, path, response.status_code)
            walked.add(url.name)
    assert {"api-provision-request-list", "api-provision-request-vm-cancel"} <= walked


def test_bad_queries_get_4xx_with_a_message(client, world) -> None:
    client_api = api(token_for(client, world["admin"]))
    past_end = client_api.get("/api/audit/", {"page": 99})
    assert past_end.status_code == 404 and "Invalid page" in past_end.json()["detail"]
    unknown = client_api.get("/api/audit/", {"colour": "red"})
    assert unknown.status_code == 400 and "colour" in unknown.json()["detail"]
    assert client_api.get("/api/audit/", {"since": "yesterday"}).status_code == 400
    assert client_api.get("/api/events/", {"severity": "fatal"}).status_code == 400
    malformed = client_api.generic("POST", "/api/projects/", "{not json", content_type="application/json")
    assert malformed.status_code in {400, 405}


def test_schema_and_docs_are_served_to_signed_in_users(client, world) -> None:
    client_api = api(token_for(client, world["viewer"]))
    schema = client_api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    assert "/api/audit/" in schema.json()["paths"]
    client.force_login(world["viewer"])
    docs = client.get("/api/docs/")
    assert docs.status_code == 200 and b"swagger" in docs.content.lower()
    assert api().get("/api/schema/").status_code == 401
