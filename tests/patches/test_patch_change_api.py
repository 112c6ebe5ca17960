"""Patch changes through the API: the same services and refusals as the pages (plan, submit,
approve, apply), each host's transitions in the answer, and what another project's member,
a Viewer or a forged id gets."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from hosts.models import PatchChange, PatchChangeStatus
from portal.models import AuditEntry, Project, Role
from tests.api.common import client_for
from tests.patches.patch_fleet import make_host
from tests.queued import record_queued

pytestmark = pytest.mark.django_db


def body(project: Project, hosts: list[Any], **extra: Any) -> dict[str, Any]:
    return {"project": project.pk, "hosts": [h.pk for h in hosts], "kind": "advisories",
            "advisories": ["PHSA-2026-0001"], **extra}  # fmt: skip


def test_a_script_plans_submits_approves_and_applies(
    make_user: Any, project: Project, hosts: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    queued = record_queued(monkeypatch)
    prov = client_for(make_user("prov", project=project, role=Role.PROVISIONER))
    answer = prov.post("/api/patch-changes/", body(project, hosts, batch_size=1), format="json")
    assert answer.status_code == 201, answer.content
    data = answer.json()
    runs = {h["host_name"]: h for h in data["hosts"]}
    assert runs["a"]["state"] == "planned" and runs["b"]["state"] == "nothing"
    assert runs["a"]["transitions"] == [
        {"package": "openssl.x86_64", "installed": runs["a"]["transitions"][0]["installed"],
         "target": "3.0.8-2.ph5", "advisories": ["PHSA-2026-0001"]}
    ]  # fmt: skip
    change = f"/api/patch-changes/{data['id']}"
    # Not theirs to approve: the same sentence as the page's.
    refused = prov.post(f"{change}/approve/", {}, format="json")
    assert refused.status_code == 403 and "Only a Project admin may approve" in refused.json()["detail"]
    assert prov.post(f"{change}/submit/", format="json").json()["status"] == "awaiting_approval"
    padmin = client_for(make_user("padmin", project=project, role=Role.PROJECT_ADMIN))
    approved = padmin.post(f"{change}/approve/", {"comment": "tonight"}, format="json")
    assert approved.status_code == 200 and approved.json()["approved_by"] == "padmin"
    applied = prov.post(f"{change}/apply/", format="json")  # its planner may apply it once approved
    assert applied.status_code == 200 and applied.json()["status"] == "applying"
    assert [args for name, args in queued if name == "hosts.apply_patch_run"] == [(runs["a"]["id"],)]
    assert AuditEntry.objects.filter(action__startswith="patch.").count() == 4
    # Twice: the state refuses it (409), nothing queued again.
    again = prov.post(f"{change}/apply/", format="json")
    assert again.status_code == 409 and len(queued) == 1


def test_bad_bodies_are_400s_that_name_the_field_and_plan_nothing(
    make_user: Any, project: Project, hosts: list[Any]
) -> None:
    prov = client_for(make_user("prov", project=project, role=Role.PROVISIONER))
    cases = [
        (body(project, hosts, kind="advisories", advisories=[]), "advisories"),
        (body(project, hosts, batch_size=0), "batch_size"),
        ({**body(project, hosts), "hosts": ["1"]}, "hosts"),
        ({**body(project, hosts), "project": 2**70}, "project"),
        ({**body(project, hosts), "tag": 1}, "hosts"),  # hosts and a tag: one or the other
    ]
    for sent, field in cases:
        answer = prov.post("/api/patch-changes/", sent, format="json")
        assert answer.status_code == 400 and field in answer.json(), (sent, answer.content)
    assert not PatchChange.objects.exists()


def test_viewers_outsiders_and_forged_ids(make_user: Any, project: Project, hosts: list[Any]) -> None:
    prov = client_for(make_user("prov", project=project, role=Role.PROVISIONER))
    change_id = prov.post("/api/patch-changes/", body(project, hosts), format="json").json()["id"]
    viewer = client_for(make_user("viewer", project=project, role=Role.VIEWER))
    assert viewer.get(f"/api/patch-changes/{change_id}/").status_code == 200
    assert viewer.post("/api/patch-changes/", body(project, hosts), format="json").status_code == 403
    for action in ("submit", "approve", "apply", "cancel"):
        assert viewer.post(f"/api/patch-changes/{change_id}/{action}/", format="json").status_code == 403
    other = Project.objects.create(name="db")
    outsider = client_for(make_user("outsider", project=other, role=Role.PROJECT_ADMIN))
    assert outsider.get(f"/api/patch-changes/{change_id}/").status_code == 404
    assert outsider.post(f"/api/patch-changes/{change_id}/approve/", format="json").status_code == 404
    assert outsider.get("/api/patch-changes/").json()["count"] == 0
    # Another project's hosts through one's own project: 404, nothing planned.
    stranger = make_host(other, "stranger")
    answer = outsider.post(
        "/api/patch-changes/", {"project": other.pk, "hosts": [hosts[0].pk], "kind": "all"}, format="json"
    )
    # As the schema documents a 404 (Schemathesis found {"hosts": [...]} here once).
    assert answer.status_code == 404 and answer.json() == {"detail": "No such host."}
    assert PatchChange.objects.filter(project=other).count() == 0
    assert stranger.project == other
    assert PatchChange.objects.get().status == PatchChangeStatus.PLANNED


def test_the_list_asks_the_database_the_same_number_of_times_for_more_changes(
    make_user: Any, project: Project, hosts: list[Any]
) -> None:
    prov = client_for(make_user("prov", project=project, role=Role.PROVISIONER))
    prov.post("/api/patch-changes/", body(project, hosts), format="json")

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert prov.get("/api/patch-changes/").status_code == 200
        return len(queries)

    one = count()
    for _ in range(4):
        prov.post("/api/patch-changes/", body(project, hosts), format="json")
    assert count() == one
