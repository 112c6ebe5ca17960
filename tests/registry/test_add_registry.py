"""Adding a registry (Admins): checked against the real registry before it is saved."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from portal.models import AuditEntry
from registry.models import Registry


def form_for(info: dict[str, Any], project, **overrides: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    harbor = info["kind"] == "harbor"
    auth = "anonymous" if not info.get("user") else "robot" if harbor else "basic"
    data = {
        "name": f"lab-{info.get('name', 'harbor')}",
        "kind": "harbor" if harbor else "distribution",
        "url": info["url"],
        "auth": auth,
        "username": info.get("user") or "",
        "password": info.get("password") or "",
        "verify_tls": "on",
        "projects": [project.pk],
    }
    data.update(overrides)
    return data


@pytest.mark.parametrize("name", ["anonymous", "basic", "token"])
def test_admin_adds_each_lab_registry(client, admin, project, lab_registries, name: str) -> None:  # type: ignore[no-untyped-def]
    info = next(r for r in lab_registries if r["name"] == name)
    client.force_login(admin)
    response = client.post(reverse("registry:add"), form_for(info, project))
    assert response.status_code == 302, response.content.decode()[-3000:]
    registry = Registry.objects.get()
    assert response["Location"] == reverse("registry:registry", args=[registry.pk])
    assert list(registry.projects.all()) == [project]
    if info.get("password"):
        assert registry.password == info["password"]
    entry = AuditEntry.objects.get(action="registry.add")
    assert "password" not in str(entry.after) and (info.get("password") or "x") not in str(entry.after)


def test_admin_adds_the_harbor_with_its_robot_account(client, admin, project, lab_harbor) -> None:  # type: ignore[no-untyped-def]
    client.force_login(admin)
    response = client.post(reverse("registry:add"), form_for(lab_harbor, project))
    assert response.status_code == 302, response.content.decode()[-3000:]
    assert Registry.objects.get().username == "robot$portal"


@pytest.mark.parametrize("name", ["basic", "token"])
def test_a_wrong_password_is_refused_and_nothing_saved(
    client, admin, project, lab_registries, name: str
) -> None:  # type: ignore[no-untyped-def]
    info = next(r for r in lab_registries if r["name"] == name)
    client.force_login(admin)
    response = client.post(reverse("registry:add"), form_for(info, project, password="not-the-password"))
    assert response.status_code == 200
    text = response.content.decode()
    assert "refused the user name or password" in text
    assert "not-the-password" not in text, "a password is never rendered back"
    assert not Registry.objects.exists()


def test_harbor_wrong_robot_secret_is_refused(client, admin, project, lab_harbor) -> None:  # type: ignore[no-untyped-def]
    client.force_login(admin)
    response = client.post(reverse("registry:add"), form_for(lab_harbor, project, password="nope"))
    assert response.status_code == 200
    assert "refused the user name or password" in response.content.decode()
    assert not Registry.objects.exists()


def test_editing_keeps_the_stored_password_and_never_shows_it(  # type: ignore[no-untyped-def]
    client, admin, project, lab_registries
) -> None:
    info = next(r for r in lab_registries if r["name"] == "basic")
    client.force_login(admin)
    assert client.post(reverse("registry:add"), form_for(info, project)).status_code == 302
    registry = Registry.objects.get()
    page = client.get(reverse("registry:edit", args=[registry.pk])).content.decode()
    assert info["password"] not in page
    response = client.post(
        reverse("registry:edit", args=[registry.pk]), form_for(info, project, password="", name="renamed")
    )
    assert response.status_code == 302, response.content.decode()[-2000:]
    registry.refresh_from_db()
    assert registry.name == "renamed" and registry.password == info["password"]


def test_only_admins_add_edit_or_remove(client, project_admin, project, lab_registries) -> None:  # type: ignore[no-untyped-def]
    info = next(r for r in lab_registries if r["name"] == "anonymous")
    client.force_login(project_admin)
    assert client.get(reverse("registry:add")).status_code == 403
    assert client.post(reverse("registry:add"), form_for(info, project)).status_code == 403
    registry = Registry.objects.create(name="r", url=info["url"])
    registry.projects.set([project])
    assert (
        client.post(reverse("registry:edit", args=[registry.pk]), form_for(info, project)).status_code == 403
    )
    assert client.post(reverse("registry:remove", args=[registry.pk])).status_code == 403
    assert Registry.objects.filter(pk=registry.pk).exists()


def test_removing_asks_first_and_is_audited(client, admin, project) -> None:  # type: ignore[no-untyped-def]
    registry = Registry.objects.create(name="old", url="http://127.0.0.1:9")
    client.force_login(admin)
    page = client.get(reverse("registry:remove", args=[registry.pk]))
    assert page.status_code == 200 and b"Nothing in the registry is deleted" in page.content
    assert Registry.objects.filter(pk=registry.pk).exists()
    assert client.post(reverse("registry:remove", args=[registry.pk])).status_code == 302
    assert not Registry.objects.exists()
    assert AuditEntry.objects.filter(action="registry.remove").exists()
