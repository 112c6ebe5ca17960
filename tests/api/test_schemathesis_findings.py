"""What Schemathesis found with the lab registered (tests/api/test_api_schemathesis_lab.py),
each kept fixed: the answer as the schema says, and the wrong JSON type refused, not coerced."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from hosts.models import AppTemplate, Host, TemplateVersion
from hosts.models.changes import Change, ChangeStatus, Profile
from portal.models import Project
from registry.models import Registry
from tests.api.common import client_for

pytestmark = pytest.mark.django_db

COMPOSE = "services:\n  web:\n    image: lab/busybox:1.35\n"


@pytest.fixture
def world(make_user) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    web = Project.objects.create(name="web")
    # Unreachable and disabled: every answer here comes before anything is asked of a peer.
    host = Host.objects.create(project=web, name="photon-web", docker_url="tcp://127.0.0.1:9", enabled=False)
    profile = Profile.objects.create(project=web, name="hardened", settings={"sshd": {"MaxAuthTries": 3}})
    change = Change.objects.create(project=web, title="t", profile=profile, status=ChangeStatus.PLANNED)
    template = AppTemplate.objects.create(project=web, name="shop")
    TemplateVersion.objects.create(template=template, number=1, source=COMPOSE)
    registry = Registry.objects.create(name="local", url="http://127.0.0.1:9")
    registry.projects.add(web)
    api = client_for(make_user("root", admin=True))
    return {"api": api, "host": host, "change": change, "template": template, "registry": registry}


def schema(api: Any) -> dict[str, Any]:
    response = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


def test_who_made_or_approved_a_change_may_be_nobody_and_the_schema_says_so(world) -> None:  # type: ignore[no-untyped-def]
    answer = world["api"].get(f"/api/changes/{world['change'].pk}/").json()
    assert answer["created_by"] is None and answer["approved_by"] is None
    components = schema(world["api"])["components"]["schemas"]
    for name, field in [
        ("Change", "created_by"),
        ("Change", "approved_by"),
        ("ChangeDetail", "created_by"),
        ("Version", "created_by"),
        ("ProvisionRequest", "requester"),
        ("VmTask", "actor"),
    ]:
        assert components[name]["properties"][field].get("nullable") is True, (name, field)


@pytest.mark.parametrize(
    ("url", "body", "field"),
    [
        ("/api/hosts/{host}/deploy/", {"image": "lab/busybox:1.35", "pull_only": 0}, "pull_only"),
        ("/api/hosts/{host}/deploy/", {"image": "lab/busybox:1.35", "environment": {"A": 1}}, "environment"),
        (
            "/api/hosts/{host}/deploy/",
            {"image": "lab/busybox:1.35", "ports": [{"host": "80", "container": 80}]},
            "ports",
        ),
        ("/api/changes/{change}/reject/", {"comment": 0}, "comment"),
        ("/api/app-templates/{template}/plan/", {"name": "shop2", "one_host": 0}, "one_host"),
        ("/api/profiles/{profile}/plan/", {"hosts": ["1"]}, "hosts"),
    ],
)
def test_a_value_of_the_wrong_json_type_is_refused_not_coerced(
    world, url: str, body: dict[str, Any], field: str
) -> None:  # type: ignore[no-untyped-def]
    ids = {
        "host": world["host"].pk,
        "change": world["change"].pk,
        "template": world["template"].pk,
        "profile": world["change"].profile_id,
    }
    response = world["api"].post(url.format(**ids), body, format="json")
    assert response.status_code == 400, response.content
    errors = response.json()
    assert field in errors, errors
    assert Change.objects.get(pk=world["change"].pk).status == ChangeStatus.PLANNED


def test_a_body_of_json_null_is_not_an_empty_decision(world) -> None:  # type: ignore[no-untyped-def]
    url = f"/api/changes/{world['change'].pk}/reject/"
    response = world["api"].generic("POST", url, "null", content_type="application/json")
    assert response.status_code == 400
    assert Change.objects.get(pk=world["change"].pk).status == ChangeStatus.PLANNED


def test_apply_says_in_the_schema_that_only_true_confirms(world) -> None:  # type: ignore[no-untyped-def]
    components = schema(world["api"])["components"]["schemas"]
    confirm = components["ApplyRequest"]["properties"]["confirm"]["allOf"][0]["$ref"]
    assert components[confirm.rsplit("/", 1)[1]]["enum"] == [True]


def test_a_template_export_of_a_missing_version_is_a_404_with_detail(world) -> None:  # type: ignore[no-untyped-def]
    response = world["api"].get(f"/api/app-templates/{world['template'].pk}/export/", {"version": 7})
    assert response.status_code == 404 and response.json() == {"detail": "shop has no version 7."}
    exported = schema(world["api"])["paths"]["/api/app-templates/{id}/export/"]["get"]["responses"]["200"]
    assert exported["content"]["application/yaml"]["schema"]["type"] == "object"


def test_a_templates_versions_are_a_list_as_the_schema_says(world) -> None:  # type: ignore[no-untyped-def]
    response = world["api"].get(f"/api/app-templates/{world['template'].pk}/versions/")
    assert response.status_code == 200 and [v["number"] for v in response.json()] == [1]
    answer = schema(world["api"])["paths"]["/api/app-templates/{id}/versions/"]["get"]["responses"]["200"]
    assert answer["content"]["application/json"]["schema"]["type"] == "array"


@pytest.mark.parametrize(("query", "field"), [({"q": "a\x00b"}, "detail"), ({"page_size": 501}, "page_size")])
def test_a_registry_list_refuses_what_its_schema_refuses(world, query: dict[str, Any], field: str) -> None:  # type: ignore[no-untyped-def]
    response = world["api"].get(f"/api/registries/{world['registry'].pk}/repositories/", query)
    assert response.status_code == 400 and field in response.json()


def test_each_schemathesis_exception_names_its_operations_exactly() -> None:
    """include-path and include-method are matched each on its own: an entry with
    include-method = "POST" once lent its statuses to every POST of the API."""
    config = tomllib.loads((Path(__file__).parent / "schemathesis.toml").read_text())
    for entry in config["operations"]:
        keys = {key for key in entry if key.startswith("include-")}
        assert keys in ({"include-name"}, {"include-name-regex"}, {"include-path-regex"}), entry
        if "include-path-regex" in keys:
            assert entry["include-path-regex"].startswith("^/api/app-templates/"), entry


def test_planning_a_name_already_deployed_is_a_documented_409(world) -> None:  # type: ignore[no-untyped-def]
    """Found by the stateful phase: a deploy, then a plan of the same name (409, undocumented)."""
    from hosts.models import Application

    template = world["template"]
    Application.objects.create(
        project=template.project,
        name="shop",
        template=template,
        source=COMPOSE,
        state=Application.State.RUNNING,
    )
    answer = world["api"].post(f"/api/app-templates/{template.pk}/plan/", {"name": "shop"}, format="json")
    assert answer.status_code == 409 and "deployed already" in str(answer.json())
    plan = schema(world["api"])["paths"]["/api/app-templates/{id}/plan/"]["post"]
    assert "409" in plan["responses"]


def test_the_toml_knows_scaling_names_one_of_the_applications_services() -> None:
    """Found by the stateful phase: a service name the schema allows may be none of the
    application's, and the 400 that says so is that rule, named in the toml."""
    config = tomllib.loads((Path(__file__).parent / "schemathesis.toml").read_text())
    scale = [o for o in config["operations"] if o.get("include-name") == "POST /api/applications/{id}/scale/"]
    assert scale and "400" in scale[0]["checks"]["positive_data_acceptance"]["expected-statuses"]


def test_a_body_over_the_upload_limit_is_a_json_400(world, settings) -> None:  # type: ignore[no-untyped-def]
    """Found by a random seed: Django's own answer to a too large body was an HTML page."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    answer = world["api"].post(
        "/api/app-templates/", {"project": 1, "name": "big", "compose_file": "x" * 2000}, format="json"
    )
    assert answer.status_code == 400 and answer["Content-Type"] == "application/json"
    assert answer.json() == {"detail": "The request body is over 1000 bytes."}
