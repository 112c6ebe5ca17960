"""Application templates: import a Compose file, versions and their diff, export byte for byte,
refusals that name the key and line and save nothing, and who may do what (pages and API)."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from hosts.models import AppTemplate, TemplateVersion
from portal.models import AuditEntry, Membership, Role
from tests.api.common import client_for

pytestmark = pytest.mark.django_db

THREE_TIER = """\
# The shop: web in front, an app, its database.
services:
  web:
    image: nginx:${WEB_TAG:-1.27}
    ports: ["8080:80"]
    depends_on: [app]
  app:
    image: registry.lab/shop/app:1.0
    environment:
      DB_PASSWORD: ${DB_PASSWORD:?set the database password}
    depends_on:
      db: {condition: service_healthy}
  db:
    image: postgres:16
    volumes: [data:/var/lib/postgresql/data]
    healthcheck: {test: ["CMD", "pg_isready"], interval: 5s}
volumes:
  data: {}
"""


def _new(client: Any, project: Any, source: str = THREE_TIER, **extra: Any) -> Any:
    data = {
        "project": project.pk,
        "name": "shop",
        "description": "Three tiers",
        "compose_file": source,
        **extra,
    }
    return client.post(reverse("hosts:app_template_new"), data)


def test_a_project_admin_imports_a_compose_file_and_exports_the_same_bytes(client, people, project) -> None:
    client.force_login(people["manager"])
    # Windows line ends and a byte-order mark, uploaded: kept as they are.
    raw = ("\ufeff" + THREE_TIER.replace("\n", "\r\n")).encode()
    upload = SimpleUploadedFile("compose.yaml", raw, content_type="application/yaml")
    response = client.post(
        reverse("hosts:app_template_new"),
        {"project": project.pk, "name": "shop", "compose_file": "", "upload": upload},
    )
    template = AppTemplate.objects.get(project=project, name="shop")
    assert response.status_code == 302 and response["Location"] == reverse(
        "hosts:app_template", args=[template.pk]
    )
    exported = client.get(reverse("hosts:app_template_export", args=[template.pk]))
    assert exported["Content-Type"] == "application/yaml"
    assert b"".join(exported) == raw
    assert 'filename="shop-v1.compose.yaml"' in exported["Content-Disposition"]

    page = client.get(reverse("hosts:app_template", args=[template.pk])).content.decode()
    assert "WEB_TAG" in page and "DB_PASSWORD" in page and "set the database password" in page
    entry = AuditEntry.objects.get(action="app.template_save")
    assert entry.actor == people["manager"] and entry.after["version"] == 1


def test_pasted_text_loses_only_the_browsers_carriage_returns(client, people, project) -> None:
    client.force_login(people["manager"])
    _new(client, project, THREE_TIER.replace("\n", "\r\n"))
    assert TemplateVersion.objects.get().source == THREE_TIER


def test_each_changed_save_is_a_version_and_two_versions_compare(client, people, project) -> None:
    client.force_login(people["manager"])
    _new(client, project)
    template = AppTemplate.objects.get()
    edit = reverse("hosts:app_template_edit", args=[template.pk])
    newer = THREE_TIER.replace("postgres:16", "postgres:17")
    client.post(edit, {"name": "shop", "compose_file": newer, "note": "PostgreSQL 17"})
    client.post(edit, {"name": "shop", "compose_file": newer, "description": "now described"})  # same file
    assert list(template.versions.values_list("number", "note")) == [(2, "PostgreSQL 17"), (1, "")]
    template.refresh_from_db()
    assert template.description == "now described"

    page = client.get(
        reverse("hosts:app_template", args=[template.pk]), {"from": 1, "to": 2}
    ).content.decode()
    assert "-    image: postgres:16" in page and "+    image: postgres:17" in page
    old = client.get(reverse("hosts:app_template_export", args=[template.pk]), {"version": 1})
    assert b"".join(old).decode() == THREE_TIER
    missing = client.get(reverse("hosts:app_template", args=[template.pk]), {"from": 1, "to": 9})
    assert "has no version 9" in missing.content.decode()


def test_a_file_the_portal_cannot_honour_is_refused_by_key_and_line_and_nothing_is_saved(
    client, people, project
) -> None:
    client.force_login(people["manager"])
    bad = THREE_TIER.replace(
        "    image: postgres:16\n", "    image: postgres:16\n    build: ./db\n    privileged: true\n"
    )
    page = _new(client, project, bad).content.decode()
    assert "services.db.build" in page and "line 15" in page
    assert "services.db.privileged" in page and "line 16" in page
    assert "2 problems; nothing was saved" in page
    assert (
        not AppTemplate.objects.exists() and not AuditEntry.objects.filter(action__startswith="app.").exists()
    )


def test_a_name_taken_in_the_project_is_refused(client, people, project) -> None:
    client.force_login(people["manager"])
    _new(client, project)
    page = _new(client, project).content.decode()
    assert "A template named &#x27;shop&#x27; exists in Team A." in page
    assert AppTemplate.objects.count() == 1


def test_who_may_see_and_keep_templates(client, people, project, other_project, make_user) -> None:
    client.force_login(people["manager"])
    _new(client, project)
    template = AppTemplate.objects.get()
    pages = [
        reverse("hosts:app_template", args=[template.pk]),
        reverse("hosts:app_template_export", args=[template.pk]),
    ]
    keeping = [
        reverse("hosts:app_template_edit", args=[template.pk]),
        reverse("hosts:app_template_remove", args=[template.pk]),
    ]
    for role in ("viewer", "provisioner"):
        client.force_login(people[role])
        assert all(client.get(url).status_code == 200 for url in pages)
        assert all(client.get(url).status_code == 403 for url in keeping)
        assert client.post(keeping[1]).status_code == 403
        assert _new(client, project).status_code == 404  # no project to keep templates in
    # An admin of another project: the template does not exist for them, and their form offers
    # only their own project (a forged project id is refused by the form).
    stranger = make_user("stranger", project=other_project, role=Role.PROJECT_ADMIN)
    client.force_login(stranger)
    assert all(client.get(url).status_code == 404 for url in pages + keeping)
    assert client.post(keeping[1]).status_code == 404
    forged = _new(client, project, name="mine").content.decode()
    assert "Select a valid choice" in forged
    assert AppTemplate.objects.count() == 1 and AppTemplate.objects.get().name == "shop"
    client.force_login(people["outsider"])
    assert client.get(reverse("hosts:apps")).status_code == 200
    assert "shop" not in client.get(reverse("hosts:apps")).content.decode()


def test_removing_asks_first_then_removes_with_every_version(client, people, project) -> None:
    client.force_login(people["manager"])
    _new(client, project)
    template = AppTemplate.objects.get()
    url = reverse("hosts:app_template_remove", args=[template.pk])
    assert "Remove template shop?" in client.get(url).content.decode()
    assert AppTemplate.objects.exists()
    client.post(url)
    assert not AppTemplate.objects.exists() and not TemplateVersion.objects.exists()
    assert AuditEntry.objects.filter(action="app.template_remove", actor=people["manager"]).exists()


def test_a_registry_tag_starts_a_template_from_its_image(client, people, project) -> None:
    client.force_login(people["manager"])
    page = client.get(reverse("hosts:app_template_new"), {"image": "registry.lab:5000/shop/app:1.0"})
    text = page.content.decode()
    assert "image: registry.lab:5000/shop/app:1.0" in text and 'value="app:1.0"' in text


# -- the API: the same rules --------------------------------------------------------------------


def test_the_api_keeps_templates_by_the_same_rules(people, project, other_project) -> None:
    api = client_for(people["manager"])
    created = api.post(
        "/api/app-templates/",
        {"project": project.pk, "name": "shop", "compose_file": THREE_TIER},
        format="json",
    )
    assert created.status_code == 201, created.content
    pk = created.json()["id"]
    assert created.json()["latest"] == 1 and created.json()["compose_file"] == THREE_TIER
    assert {v["name"] for v in created.json()["variables"]} == {"WEB_TAG", "DB_PASSWORD"}

    refused = api.put(
        f"/api/app-templates/{pk}/",
        {"name": "shop", "compose_file": "services:\n  x:\n    build: .\n"},
        format="json",
    )
    assert refused.status_code == 400
    assert any("services.x.build (line 3)" in m for m in refused.json()["compose_file"])
    newer = THREE_TIER.replace("1.0", "1.1")
    assert (
        api.put(f"/api/app-templates/{pk}/", {"name": "shop", "compose_file": newer}, format="json").json()[
            "latest"
        ]
        == 2
    )
    versions = api.get(f"/api/app-templates/{pk}/versions/").json()
    assert [v["number"] for v in versions] == [2, 1]
    assert api.get(f"/api/app-templates/{pk}/export/", {"version": 1}).content.decode() == THREE_TIER

    # A Provisioner reads but does not keep; another project's member does not see it at all.
    prov = client_for(people["provisioner"])
    assert prov.get(f"/api/app-templates/{pk}/").status_code == 200
    assert (
        prov.put(
            f"/api/app-templates/{pk}/", {"name": "x", "compose_file": THREE_TIER}, format="json"
        ).status_code
        == 403
    )
    assert prov.delete(f"/api/app-templates/{pk}/").status_code == 403
    Membership.objects.create(user=people["outsider"], project=other_project, role=Role.PROJECT_ADMIN)
    outsider = client_for(people["outsider"])
    assert outsider.get(f"/api/app-templates/{pk}/").status_code == 404
    into_theirs = outsider.post(
        "/api/app-templates/",
        {"project": project.pk, "name": "mine", "compose_file": THREE_TIER},
        format="json",
    )
    # A project one may not see is answered as one that does not exist: the same 404, nothing made.
    assert into_theirs.status_code == 404 and AppTemplate.objects.count() == 1
    assert into_theirs.json() == {"detail": "No such project, or not visible to you."}
    nowhere = outsider.post(
        "/api/app-templates/", {"project": 2**63, "name": "mine", "compose_file": THREE_TIER}, format="json"
    )
    assert nowhere.status_code == 400 and "project" in nowhere.json()  # past any id: never queried
    assert api.delete(f"/api/app-templates/{pk}/").status_code == 204
    assert not AppTemplate.objects.exists()
