"""Plan, approve and apply a profile through the API and with `manage.py change`, on real lab hosts."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from hosts.models import Change
from hosts.models.changes import Profile
from portal.models import AuditEntry
from tests.api.common import client_for
from tests.changes.conftest import lab_run, wait_runs
from tests.lab.common import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.lab]


def test_a_provisioner_plans_a_project_admin_approves_and_it_applies(  # type: ignore[no-untyped-def]
    profiled_host, celery_worker_if_brokered
) -> None:
    lab, host, profile, people = profiled_host
    prov, pa, viewer = (client_for(people[k]) for k in ("prov", "pa", "viewer"))
    assert viewer.post(f"/api/profiles/{profile.pk}/plan/", {}, format="json").status_code == 403
    planned = prov.post(f"/api/profiles/{profile.pk}/plan/", {"hosts": [host.pk]}, format="json")
    assert planned.status_code == 202, planned.content
    change_id = planned.json()["id"]

    def status() -> str:
        return str(prov.get(f"/api/changes/{change_id}/").json()["status"])

    wait_until(lambda: status() == "awaiting_approval", timeout=120, what="the plan")
    detail = prov.get(f"/api/changes/{change_id}/").json()
    assert "+MaxAuthTries 5" in detail["hosts"][0]["diff"] and detail["hosts"][0]["state"] == "planned"
    assert prov.post(f"/api/changes/{change_id}/approve/").status_code == 403
    refused = prov.post(f"/api/changes/{change_id}/apply/", {"confirm": True}, format="json")
    assert refused.status_code == 409 and "cannot be applied" in refused.json()["detail"]

    approved = pa.post(f"/api/changes/{change_id}/approve/", {"comment": "fine by me"}, format="json")
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    unconfirmed = prov.post(f"/api/changes/{change_id}/apply/", {}, format="json")
    assert unconfirmed.status_code == 400 and "confirm" in unconfirmed.json()
    assert prov.post(f"/api/changes/{change_id}/apply/", {"confirm": True}, format="json").status_code == 200
    runs = wait_runs(Change.objects.get(pk=change_id))
    assert runs[host.name].state == "applied", runs[host.name].reason
    assert status() == "applied" and prov.get(f"/api/changes/{change_id}/").json()["progress"] == 100
    assert "maxauthtries 5" in lab_run(lab, "sshd -T").splitlines()
    trail = AuditEntry.objects.filter(object_id=str(change_id), object_type="hosts.change")
    assert trail.get(action="change.approve").after["comment"] == "fine by me"
    assert {("change.plan", "prov"), ("change.approve", "pa"), ("change.apply", "prov")} <= set(
        trail.values_list("action", "actor_name")
    )


def test_the_change_command_plans_and_applies_with_an_exit_code(  # type: ignore[no-untyped-def]
    profiled_host, celery_worker_if_brokered, capsys
) -> None:
    lab, host, profile, _ = profiled_host
    Profile.objects.filter(pk=profile.pk).update(settings={"sshd": {"MaxAuthTries": 6}})
    # A Provisioner's plan waits for approval: exit code 3, nothing applied.
    with pytest.raises(SystemExit) as waiting:
        call_command("change", "tries", "--user", "prov", "--apply")
    assert waiting.value.code == 3
    line = capsys.readouterr().out.strip()
    assert line.endswith("1 host(s): 1 planned") and "awaiting a Project admin's approval" in line
    assert "maxauthtries 6" not in lab_run(lab, "sshd -T").splitlines()

    call_command("change", "tries", "--user", "pa", "--hosts", host.name, "--apply")
    line = capsys.readouterr().out.strip()
    assert "(applied): applied; 1 host(s): 1 applied" in line
    assert "maxauthtries 6" in lab_run(lab, "sshd -T").splitlines()
    assert AuditEntry.objects.filter(action="change.apply", actor_name="pa").exists()

    with pytest.raises(CommandError, match="may not plan"):
        call_command("change", "tries", "--user", "viewer")
    with pytest.raises(CommandError, match="Not hosts of profile"):
        call_command("change", "tries", "--user", "pa", "--hosts", "nope")
    with pytest.raises(CommandError, match="No profile"):
        call_command("change", "absent", "--user", "pa")
