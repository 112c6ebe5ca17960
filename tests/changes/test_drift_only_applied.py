"""Drift compares a host only with the profiles put in place there, and not since undone;
a repair resolves its row and an undo takes the host out of the profile, and says so."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from hosts.changes import drift
from hosts.models import Change, ChangeRun, Drift, Host, Profile
from portal import live
from portal.models import Project, Role

SETTINGS = {"sshd": {"MaxAuthTries": 3}}


@pytest.fixture
def world(db, make_user, monkeypatch) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    project = Project.objects.create(name="fleet")
    host = Host.objects.create(
        project=project, name="h1", docker_url="tcp://10.0.0.1:2376", address="10.0.0.1"
    )
    profile = Profile.objects.create(project=project, name="hardened", settings=SETTINGS)
    profile.hosts.add(host)
    read: list[tuple[int, int]] = []

    # No SSH: every host compared is found drifted; which were compared is what matters here.
    async def drifted(item: Any) -> tuple[str, str]:
        read.append((item.host_id, item.profile_id))
        return "drifted", "--- a/etc/ssh/sshd_config\n+++ b/etc/ssh/sshd_config\n-MaxAuthTries 3\n"

    monkeypatch.setattr(drift, "_drift_one", drifted)
    pushed: list[str] = []

    # The drift list's rows (the project's topic); the host page's news of them is tested with it.
    def publish(topic: str, html: str = "", data: Any = None) -> None:
        if topic == drift.topic(project.pk):
            pushed.append(html)

    monkeypatch.setattr(live, "publish", publish)
    return {
        "project": project,
        "host": host,
        "profile": profile,
        "read": read,
        "pushed": pushed,
        "admin": make_user("pa", project=project, role=Role.PROJECT_ADMIN),
    }


def run_of(world: dict[str, Any], state: str, *, minutes: int = 0, **fields: Any) -> ChangeRun:
    fields.setdefault("profile", world["profile"])
    change = Change.objects.create(
        project=world["project"], title="t", settings=SETTINGS, status="applied", **fields
    )
    finished = timezone.now() + timedelta(minutes=minutes) if state == "applied" else None
    return ChangeRun.objects.create(change=change, host=world["host"], state=state, finished=finished)


@pytest.mark.parametrize("state", ["planned", "refused", "unreachable", "failed", "rolled_back"])
def test_a_profile_only_planned_or_refused_is_not_compared(world, state) -> None:
    run_of(world, state)
    Drift.objects.create(host=world["host"], profile=world["profile"], state="drifted", diff="x")
    assert drift.check_drift([world["host"]]) == []
    assert world["read"] == [] and not Drift.objects.exists()
    assert 'data-state="released"' in world["pushed"][-1] and "Out of the profile" in world["pushed"][-1]


@pytest.mark.parametrize("state", ["applied", "unchanged"])
def test_a_profile_applied_or_found_in_place_is_compared(world, state) -> None:
    run_of(world, state)
    (row,) = drift.check_drift([world["host"]])
    assert row.state == "drifted" and world["read"] == [(world["host"].pk, world["profile"].pk)]
    assert 'data-state="drifted"' in world["pushed"][-1] and "Bring back" in world["pushed"][-1]


def test_an_undo_takes_the_host_out_of_the_profile_until_applied_again(world) -> None:
    applied = run_of(world, "applied")
    undo = run_of(world, "applied", minutes=1, profile=None, reverts=applied.change)
    Drift.objects.create(host=world["host"], profile=world["profile"], state="drifted", diff="x")
    drift.after_apply(undo.pk)
    assert not Drift.objects.exists() and 'data-state="released"' in world["pushed"][-1]
    assert drift.check_drift([world["host"]]) == [] and world["read"] == []
    # Applied once more, later: compared again.
    run_of(world, "applied", minutes=2)
    assert [row.state for row in drift.check_drift([world["host"]])] == ["drifted"]


def test_a_repair_resolves_the_drift_row_and_pushes_it(world) -> None:
    row = Drift.objects.create(host=world["host"], profile=world["profile"], state="drifted", diff="x")
    fix = run_of(world, "applied")
    drift.after_apply(fix.pk)
    row.refresh_from_db()
    assert row.state == "in_sync" and row.diff == ""
    assert f'id="drift-{row.pk}"' in world["pushed"][-1] and 'data-state="in_sync"' in world["pushed"][-1]
    assert "Bring back" not in world["pushed"][-1]


def test_a_repair_with_settings_the_profile_no_longer_has_leaves_the_row(world) -> None:
    row = Drift.objects.create(host=world["host"], profile=world["profile"], state="drifted", diff="x")
    fix = run_of(world, "applied")
    world["profile"].settings = {"sshd": {"MaxAuthTries": 2}}
    world["profile"].save()
    drift.after_apply(fix.pk)
    row.refresh_from_db()
    assert row.state == "drifted"


def test_the_undo_page_says_the_host_is_out_of_the_profile(client, world) -> None:
    applied = run_of(world, "applied")
    undo = run_of(world, "applied", minutes=1, profile=None, reverts=applied.change)
    client.force_login(world["admin"])
    page = client.get(f"/hosts/changes/{undo.change.pk}/").content.decode()
    assert "h1 is out of profile hardened now: drift no longer compares it" in page
    assert f'href="/hosts/changes/profiles/{world["profile"].pk}/"' in page
    assert "Take h1 out of hardened" in page
    # Once the profile no longer names the host, there is nothing to take it out of.
    world["profile"].hosts.remove(world["host"])
    page = client.get(f"/hosts/changes/{undo.change.pk}/").content.decode()
    assert "h1 is out of profile hardened now" in page and "Take h1 out of" not in page
