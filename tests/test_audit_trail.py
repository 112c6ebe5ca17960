"""The audit trail: scoped to what one may see, filterable, exportable, and immutable."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from portal import audit
from portal.models import AuditEntry, AuditTrailIsImmutable, Project, Role

pytestmark = pytest.mark.django_db


@pytest.fixture
def trail(make_user):  # type: ignore[no-untyped-def]
    web, db = Project.objects.create(name="web"), Project.objects.create(name="db")
    alice = make_user("alice", project=web, role=Role.VIEWER)
    bob = make_user("bob", project=db, role=Role.PROJECT_ADMIN)
    audit.record("host.add", project=web, actor=bob, obj=web, after={"name": '=HYPERLINK("x")'})
    audit.record("host.add", project=db, actor=bob, obj=db)
    audit.record("host.remove", project=web, actor=alice, obj=web)
    return {"web": web, "db": db, "alice": alice, "bob": bob}


def rows(response) -> list[str]:  # type: ignore[no-untyped-def]
    return [e.action + "@" + e.project_name for e in response.context["page"]]


def test_members_see_their_projects_and_their_own_entries(client, trail) -> None:
    client.force_login(trail["alice"])  # her sign-in is audited too, and is hers
    seen = rows(client.get("/audit/"))
    assert "host.add@web" in seen and "host.remove@web" in seen and "auth.login@" in seen
    assert "host.add@db" not in seen


def test_admins_see_everything(client, trail, make_user) -> None:
    client.force_login(make_user("root", admin=True))
    assert "host.add@db" in rows(client.get("/audit/"))


def test_filters_narrow_by_person_action_and_time(client, trail, make_user) -> None:
    client.force_login(make_user("root", admin=True))
    assert rows(client.get("/audit/", {"person": "alice", "action": "host."})) == ["host.remove@web"]
    tomorrow = (timezone.localdate() + timedelta(days=1)).isoformat()
    assert rows(client.get("/audit/", {"since": tomorrow})) == []
    bad = client.get("/audit/", {"since": "2026-02-30"})
    assert bad.status_code == 200 and rows(bad) == []
    reversed_range = client.get("/audit/", {"since": "2026-05-02", "until": "2026-05-01"})
    assert b"is after" in reversed_range.content


def test_csv_export_follows_the_filters_and_defuses_formulas(client, trail) -> None:
    client.force_login(trail["bob"])
    response = client.get("/audit/export.csv", {"action": "host.add"})
    assert response["Content-Type"].startswith("text/csv")
    table = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert table[0][:4] == ["at", "actor", "address", "action"]
    assert sorted(r[4] for r in table[1:]) == ["db", "web"]
    assert all(not cell.startswith("=") for r in table for cell in r)


def test_no_path_changes_or_deletes_an_entry(admin_client, trail) -> None:
    entry = AuditEntry.objects.filter(action="host.add").first()
    with pytest.raises(AuditTrailIsImmutable):
        AuditEntry.objects.filter(pk=entry.pk).update(action="nothing")
    with pytest.raises(AuditTrailIsImmutable):
        AuditEntry.objects.filter(pk=entry.pk).delete()
    entry.action = "nothing"
    with pytest.raises(AuditTrailIsImmutable):
        entry.save()
    with pytest.raises(AuditTrailIsImmutable):
        entry.delete()
    # The admin offers neither change nor delete.
    change = admin_client.post(f"/admin/portal/auditentry/{entry.pk}/change/", {"action": "nothing"})
    assert change.status_code == 403
    assert (
        admin_client.post(f"/admin/portal/auditentry/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    )
    assert AuditEntry.objects.get(pk=entry.pk).action == "host.add"


def test_deleting_a_user_or_project_leaves_the_trail_intact(trail) -> None:
    before = AuditEntry.objects.count()
    trail["alice"].delete()
    Project.objects.filter(name="web").delete()
    assert AuditEntry.objects.count() == before
    assert AuditEntry.objects.filter(actor_name="alice", project_name="web").exists()


def test_retention_prunes_only_old_entries(settings, trail) -> None:
    settings.AUDIT_RETENTION_DAYS = 0
    call_command("prune_audit", stdout=io.StringIO())
    # All gone but the record of the prune itself.
    assert list(AuditEntry.objects.values_list("action", flat=True)) == ["audit.prune"]
