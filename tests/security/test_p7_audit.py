"""Issue 12, point 7 ("Audit gaps"): deletes in the Django admin are in the trail one entry
per object, "delete selected" included; pruning the trail is itself recorded; and on
PostgreSQL the trail is append-only in the database, not only in the ORM."""

from __future__ import annotations

import io
import os

import pytest
from django.contrib import admin
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

from hosts.models import Host
from portal import audit
from portal.admin import AuditedDeletes
from portal.models import AuditEntry, Project, Role
from registry.models import Registry

pytestmark = pytest.mark.django_db


@pytest.fixture
def fleet(make_user):  # type: ignore[no-untyped-def]
    web = Project.objects.create(name="web")
    hosts = [
        Host.objects.create(project=web, name=f"web-{n}", docker_url=f"tcp://10.0.0.{n}:2376")
        for n in range(4)
    ]
    return {"web": web, "hosts": hosts, "root": make_user("root", admin=True)}


def delete_selected(client, model: str, pks: list[int]):  # type: ignore[no-untyped-def]
    return client.post(
        f"/admin/{model}/",
        {"action": "delete_selected", "_selected_action": [str(pk) for pk in pks], "post": "yes"},
    )


def test_admin_bulk_delete_of_three_hosts_leaves_three_entries(client, fleet) -> None:
    client.force_login(fleet["root"])
    doomed = fleet["hosts"][:3]
    response = delete_selected(client, "hosts/host", [h.pk for h in doomed])
    assert response.status_code == 302
    assert list(Host.objects.values_list("name", flat=True)) == ["web-3"]
    entries = AuditEntry.objects.filter(action="admin.host.delete")
    assert sorted(e.object_id for e in entries) == sorted(str(h.pk) for h in doomed)
    for entry in entries:
        assert entry.actor == fleet["root"] and entry.project == fleet["web"]
        assert entry.before["how"] == "delete selected" and entry.object_repr.startswith("web-")


def test_admin_delete_of_one_object_is_one_entry_not_two(client, fleet) -> None:
    client.force_login(fleet["root"])
    host = fleet["hosts"][0]
    assert client.post(f"/admin/hosts/host/{host.pk}/delete/", {"post": "yes"}).status_code == 302
    assert not Host.objects.filter(pk=host.pk).exists()
    entry = AuditEntry.objects.get(action="admin.host.delete")
    assert entry.object_id == str(host.pk) and entry.before["how"] == "delete"


def test_bulk_delete_is_recorded_in_every_app_s_admin(client, fleet) -> None:
    client.force_login(fleet["root"])
    registries = [
        Registry.objects.create(name=f"r{n}", kind=Registry.Kind.DISTRIBUTION, url=f"https://r{n}.test")
        for n in range(2)
    ]
    assert delete_selected(client, "registry/registry", [r.pk for r in registries]).status_code == 302
    other = Project.objects.create(name="spare")
    assert delete_selected(client, "portal/project", [other.pk]).status_code == 302
    assert AuditEntry.objects.filter(action="admin.registry.delete").count() == 2
    assert AuditEntry.objects.filter(action="admin.project.delete", object_id=str(other.pk)).count() == 1
    # And every admin of the portal's apps records its deletes the same way.
    unaudited = [
        model._meta.label
        for model, model_admin in admin.site._registry.items()
        if model._meta.app_label in {"portal", "hosts", "registry"}
        and not isinstance(model_admin, AuditedDeletes)
    ]
    assert unaudited == []


def test_a_viewer_cannot_bulk_delete_through_the_admin(client, fleet, make_user) -> None:
    viewer = make_user("viewer", project=fleet["web"], role=Role.VIEWER)
    client.force_login(viewer)
    response = delete_selected(client, "hosts/host", [h.pk for h in fleet["hosts"]])
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert Host.objects.count() == 4
    assert not AuditEntry.objects.filter(action="admin.host.delete").exists()


def test_prune_audit_records_the_prune(settings, fleet) -> None:
    audit.record("host.add", obj=fleet["web"], project=fleet["web"])
    settings.AUDIT_RETENTION_DAYS = 1
    call_command("prune_audit", stdout=io.StringIO())
    kept = AuditEntry.objects.get(action="audit.prune")
    assert kept.after["pruned"] == 0 and kept.after["events_pruned"] == 0 and kept.after["older_than"]
    assert AuditEntry.objects.filter(action="host.add").exists()  # younger than a day: kept

    settings.AUDIT_RETENTION_DAYS = 0
    out = io.StringIO()
    call_command("prune_audit", stdout=out)
    prunes = AuditEntry.objects.filter(action="audit.prune")
    assert list(AuditEntry.objects.values_list("action", flat=True)) == ["audit.prune"]
    assert prunes.get().after["pruned"] == 2 and prunes.get().actor_name == "manage.py prune_audit"
    assert "pruned 2 audit entries" in out.getvalue()


# --- PostgreSQL: append-only in the database ---------------------------------------


def require_postgresql() -> None:
    if connection.vendor != "postgresql":
        if os.environ.get("PORTAL_REQUIRE_SERVICES") == "1":
            pytest.fail("DATABASE_URL is not PostgreSQL, and PORTAL_REQUIRE_SERVICES=1")
        pytest.skip("needs PostgreSQL: set DATABASE_URL")


def raw(sql: str, *params: object) -> int:
    # A savepoint of its own: a refused statement aborts only it, not the test's transaction.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


@pytest.mark.services
def test_raw_update_and_delete_on_the_audit_table_are_refused_on_postgresql(fleet) -> None:
    require_postgresql()
    entry = audit.record("host.add", obj=fleet["web"], project=fleet["web"])
    with pytest.raises(DatabaseError, match="append-only: UPDATE"):
        raw("UPDATE portal_auditentry SET action = %s WHERE id = %s", "nothing", entry.pk)
    with pytest.raises(DatabaseError, match="append-only: DELETE"):
        raw("DELETE FROM portal_auditentry WHERE id = %s", entry.pk)
    # The prune's setting opens deletes only: an UPDATE stays refused even with it.
    with (
        pytest.raises(DatabaseError, match="append-only: UPDATE"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("SET LOCAL portal.audit_prune = 'on'")
        cursor.execute("UPDATE portal_auditentry SET action = 'nothing'")
    assert AuditEntry.objects.get(pk=entry.pk).action == "host.add"


@pytest.mark.services
def test_prune_audit_still_prunes_on_postgresql_and_leaves_no_door_open(settings, fleet) -> None:
    require_postgresql()
    audit.record("host.add", obj=fleet["web"], project=fleet["web"])
    settings.AUDIT_RETENTION_DAYS = 0
    call_command("prune_audit", stdout=io.StringIO())
    assert list(AuditEntry.objects.values_list("action", flat=True)) == ["audit.prune"]
    # In the same (test) transaction the prune ran in, deleting is refused again.
    with pytest.raises(DatabaseError, match="append-only: DELETE"):
        raw("DELETE FROM portal_auditentry")
    assert AuditEntry.objects.count() == 1
