"""Patch changes on rows (no lab): planning from the stored status and the cached repositories,
batches in host-name order, who may do what (each refusal's status and sentence, nothing made),
the batch state machine (pause on failure, next batch, final status), scheduling into a
maintenance window, and a run never carried out twice. Tasks are recorded, not run
(tests.queued): the lab tests run them."""

from __future__ import annotations

from datetime import time, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from hosts.models import (
    Host,
    MaintenanceWindow,
    PatchChange,
    PatchChangeStatus,
    PatchRun,
    PatchRunState,
    Tag,
)
from hosts.patches import apply, changes, running, schedule, status, tasks
from hosts.patches.plan import Selection
from portal.models import AuditEntry, Project, Role
from portal.refused import Refused
from tests.patches import repos
from tests.patches.patch_fleet import HOST_A, HOST_B, FakeHosts, make_host, served
from tests.queued import record_queued

pytestmark = pytest.mark.django_db

APPLY = "hosts.apply_patch_run"
SECURITY = Selection("security")


@pytest.fixture
def project() -> Project:
    return Project.objects.create(name="Photon fleet")


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    return record_queued(monkeypatch)


@pytest.fixture(autouse=True)
def quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    """The status's own news is the fleet tests' business."""
    monkeypatch.setattr(status, "publish", lambda host: None)


def checked(project: Project, names_answers: dict[str, Any]) -> list[Host]:
    """Hosts with a stored patch status, the repository cached (read from memory)."""
    hosts = [make_host(project, name) for name in names_answers]
    http, _ = repos.session(served())
    done = status.refresh_hosts(hosts, reader=FakeHosts(names_answers), session=http)
    assert [d.error for d in done] == [""] * len(hosts)
    return hosts


@pytest.fixture
def people(make_user: Any, project: Project) -> dict[str, Any]:
    return {
        "viewer": make_user("viewer", project=project, role=Role.VIEWER),
        "prov": make_user("prov", project=project, role=Role.PROVISIONER),
        "admin": make_user("padmin", project=project, role=Role.PROJECT_ADMIN),
    }


def refused(call: Any, *args: Any, **kwargs: Any) -> Refused:
    with pytest.raises(Refused) as caught:
        call(*args, **kwargs)
    return caught.value


def test_batches_count_only_hosts_with_work_in_name_order() -> None:
    assert changes.batches([True, False, True, True, True], 2) == [1, 0, 1, 2, 2]
    assert changes.batches([True, True, True], 1) == [1, 2, 3]
    assert changes.batches([False, False], 3) == [0, 0]


def test_a_plan_takes_each_hosts_status_and_the_cached_repositories(project: Project, people: Any) -> None:
    # Names out of order on purpose: batches follow the names, not the ids.
    hosts = checked(project, {"c": HOST_A, "a": HOST_A, "b": HOST_B})
    change = changes.plan_change(
        people["prov"],
        project.pk,
        host_ids=[h.pk for h in hosts],
        selection=Selection("advisories", ("PHSA-2026-0001",)),
        batch_size=1,
    )
    assert change.status == PatchChangeStatus.PLANNED and change.created_by == people["prov"]
    runs = {r.host.name: r for r in change.runs.select_related("host")}
    # b has openssl's fix already: nothing to apply, no batch.
    assert {n: (r.state, r.batch) for n, r in runs.items()} == {
        "a": (PatchRunState.PLANNED, 1),
        "b": (PatchRunState.NOTHING, 0),
        "c": (PatchRunState.PLANNED, 2),
    }
    assert [t["target"][2:4] for t in runs["a"].plan["transitions"]] == [["3.0.8", "2.ph5"]]
    entry = AuditEntry.objects.get(action="patch.plan")
    assert entry.actor == people["prov"] and entry.project == project
    assert entry.after is not None and entry.after["hosts"]["b"] == []


def test_planning_asks_the_database_the_same_number_of_times_for_more_hosts(
    project: Project, people: Any
) -> None:
    few = checked(project, {"a": HOST_A, "b": HOST_B})
    many = few + checked(project, {"c": HOST_A, "d": HOST_B, "e": HOST_A})

    def queries(hosts: list[Host]) -> int:
        with CaptureQueriesContext(connection) as seen:
            changes.plan_change(
                people["prov"], project.pk, host_ids=[h.pk for h in hosts], selection=SECURITY
            )
        return len(seen.captured_queries)

    assert queries(few) == queries(many)


def test_a_tag_chooses_the_projects_hosts_with_it(project: Project, people: Any) -> None:
    a, _ = checked(project, {"a": HOST_A, "b": HOST_B})
    tag = Tag.objects.create(name="web")
    a.tags.add(tag)
    elsewhere = make_host(Project.objects.create(name="other"), "z")
    elsewhere.tags.add(tag)
    change = changes.plan_change(people["prov"], project.pk, tag_id=tag.pk, selection=SECURITY, batch_size=2)
    assert list(change.runs.values_list("host__name", "batch")) == [("a", 1)]


def test_a_viewer_cannot_plan_and_nothing_is_made(project: Project, people: Any) -> None:
    (host,) = checked(project, {"a": HOST_A})
    said = refused(changes.plan_change, people["viewer"], project.pk, host_ids=[host.pk], selection=SECURITY)
    assert said.status == 403 and said.message == "You may not plan changes in this project."
    assert not PatchChange.objects.exists() and not AuditEntry.objects.filter(action="patch.plan").exists()


def test_another_projects_host_is_404_for_the_whole_request(project: Project, people: Any) -> None:
    (mine,) = checked(project, {"a": HOST_A})
    theirs = make_host(Project.objects.create(name="other"), "theirs")
    said = refused(
        changes.plan_change, people["prov"], project.pk, host_ids=[mine.pk, theirs.pk], selection=SECURITY
    )
    assert said.status == 404 and said.message == "No such host."
    assert not PatchChange.objects.exists() and not PatchRun.objects.exists()
    assert not AuditEntry.objects.filter(action="patch.plan").exists()
    # A project the person is not in is no project to them at all.
    stranger_project = Project.objects.create(name="stranger")
    assert (
        refused(
            changes.plan_change, people["prov"], stranger_project.pk, host_ids=[mine.pk], selection=SECURITY
        ).status
        == 404
    )


def test_a_host_never_checked_or_unreadable_is_refused(project: Project, people: Any) -> None:
    (checked_host,) = checked(project, {"a": HOST_A})
    fresh = make_host(project, "fresh")
    said = refused(
        changes.plan_change,
        people["prov"],
        project.pk,
        host_ids=[checked_host.pk, fresh.pk],
        selection=SECURITY,
    )
    assert (said.status, said.message) == (409, "Host fresh has no patch status yet: check it first.")
    Host.objects.filter(pk=fresh.pk).update(enabled=False)
    said = refused(changes.plan_change, people["prov"], project.pk, host_ids=[fresh.pk], selection=SECURITY)
    assert said.status == 409 and said.message.startswith("The portal cannot patch fresh:")
    assert (
        refused(
            changes.plan_change,
            people["prov"],
            project.pk,
            host_ids=[checked_host.pk],
            selection=SECURITY,
            batch_size=0,
        ).status
        == 400
    )


def planned(project: Project, people: Any, names: dict[str, Any], **options: Any) -> PatchChange:
    hosts = checked(project, names)
    return changes.plan_change(
        people["prov"], project.pk, host_ids=[h.pk for h in hosts], selection=SECURITY, **options
    )


def approved(change: PatchChange, people: Any) -> PatchChange:
    changes.submit(change, people["prov"])
    return changes.approve(change, people["admin"], "go")


def test_a_provisioner_cannot_approve_and_apply_waits_for_approval(
    project: Project, people: Any, queued: list[Any]
) -> None:
    change = planned(project, people, {"a": HOST_A})
    said = refused(changes.start_apply, change, people["prov"])
    assert (said.status, said.message) == (
        409,
        "This patch change is planned, not approved: it cannot be applied.",
    )
    changes.submit(change, people["prov"])
    said = refused(changes.approve, change, people["prov"])
    assert (said.status, said.message) == (403, "Only a Project admin may approve patch changes.")
    assert refused(changes.start_apply, change, people["admin"]).status == 409
    assert (
        queued == [] and not AuditEntry.objects.filter(action__in=["patch.approve", "patch.apply"]).exists()
    )
    changes.approve(change, people["admin"])
    assert refused(changes.reject, change, people["admin"]).status == 409  # approved: too late to reject
    assert refused(changes.start_apply, change, people["viewer"]).status == 403


def test_a_forged_change_id_from_another_project_is_404(
    project: Project, people: Any, make_user: Any
) -> None:
    change = planned(project, people, {"a": HOST_A})
    other = Project.objects.create(name="other")
    stranger = make_user("stranger", project=other, role=Role.PROJECT_ADMIN)
    for change_id in (change.pk, str(change.pk), "x1", 999999):
        assert refused(changes.get, stranger, change_id, "change.approve").status == 404
    assert refused(changes.get, people["viewer"], change.pk).status == 403  # sees it, may not plan
    assert changes.get(people["viewer"], change.pk, "change.view") == change
    assert list(changes.visible(stranger)) == [] and list(changes.visible(people["viewer"])) == [change]


def test_applying_queues_the_first_batch_and_cancel_is_refused_meanwhile(
    project: Project, people: Any, queued: list[Any]
) -> None:
    change = approved(planned(project, people, {"a": HOST_A, "b": HOST_B, "c": HOST_A}), people)
    changes.start_apply(change, people["prov"])  # its planner may apply it once approved
    change.refresh_from_db()
    runs = {r.host.name: r for r in change.runs.select_related("host")}
    assert change.status == PatchChangeStatus.APPLYING and change.applied_by == people["prov"]
    assert queued == [(APPLY, (runs["a"].pk,))]
    assert [runs[n].state for n in "abc"] == [
        PatchRunState.QUEUED,
        PatchRunState.WAITING,
        PatchRunState.WAITING,
    ]
    said = refused(changes.cancel, change, people["admin"])
    assert (said.status, said.message) == (
        409,
        "Hosts of this patch change are being patched: it cannot be cancelled now.",
    )
    assert AuditEntry.objects.filter(action="patch.apply", actor=people["prov"]).count() == 1


def end_batch(change: PatchChange, states: dict[str, str]) -> str:
    for name, state in states.items():
        PatchRun.objects.filter(change=change, host__name=name).update(state=state)
    return tasks.advance(change.pk)


def test_a_failed_batch_pauses_the_change_and_resume_queues_the_next(
    project: Project, people: Any, queued: list[Any]
) -> None:
    change = approved(planned(project, people, {"a": HOST_A, "b": HOST_B, "c": HOST_A}), people)
    changes.start_apply(change, people["admin"])
    queued.clear()
    assert end_batch(change, {"a": PatchRunState.ROLLED_BACK}) == PatchChangeStatus.PAUSED
    assert queued == [] and tasks.advance(change.pk) == PatchChangeStatus.PAUSED  # twice: the same
    assert AuditEntry.objects.get(action="patch.paused").actor_name == "system"
    assert refused(changes.resume, change, people["prov"]).status == 403
    changes.resume(change, people["admin"])
    b = PatchRun.objects.get(change=change, host__name="b")
    assert queued == [(APPLY, (b.pk,))] and b.state == PatchRunState.QUEUED
    # b's batch went well: the next goes on although a (an earlier batch) failed.
    assert end_batch(change, {"b": PatchRunState.APPLIED}) == PatchChangeStatus.APPLYING
    c = PatchRun.objects.get(change=change, host__name="c")
    assert queued[-1] == (APPLY, (c.pk,))
    assert end_batch(change, {"c": PatchRunState.APPLIED}) == PatchChangeStatus.PARTIAL
    change.refresh_from_db()
    assert change.finished_at is not None


def test_without_pause_on_failure_the_next_batch_goes_and_the_end_is_counted(
    project: Project, people: Any, queued: list[Any]
) -> None:
    change = approved(
        planned(
            project, people, {"a": HOST_A, "b": HOST_A, "c": HOST_A}, batch_size=2, pause_on_failure=False
        ),
        people,
    )
    changes.start_apply(change, people["admin"])
    assert len(queued) == 2
    # One of the batch still applying: nothing moves yet.
    assert end_batch(change, {"a": PatchRunState.FAILED}) == PatchChangeStatus.APPLYING and len(queued) == 2
    assert end_batch(change, {"b": PatchRunState.FAILED}) == PatchChangeStatus.APPLYING and len(queued) == 3
    assert end_batch(change, {"c": PatchRunState.FAILED}) == PatchChangeStatus.FAILED


def test_every_host_applied_or_with_nothing_is_applied(
    project: Project, people: Any, queued: list[Any]
) -> None:
    change = approved(
        changes.plan_change(
            people["prov"],
            project.pk,
            host_ids=[h.pk for h in checked(project, {"a": HOST_A, "b": HOST_B})],
            selection=Selection("advisories", ("PHSA-2026-0001",)),
        ),
        people,
    )
    changes.start_apply(change, people["admin"])
    assert end_batch(change, {"a": PatchRunState.APPLIED}) == PatchChangeStatus.APPLIED
    assert tasks.final_status([PatchRunState.APPLIED, PatchRunState.SKIPPED]) == PatchChangeStatus.APPLIED


def test_cancel_skips_the_waiting_hosts(project: Project, people: Any, queued: list[Any]) -> None:
    change = approved(planned(project, people, {"a": HOST_A, "b": HOST_A}), people)
    changes.start_apply(change, people["admin"])
    end_batch(change, {"a": PatchRunState.FAILED})
    assert refused(changes.cancel, change, people["prov"]).status == 403  # approved: an admin decides
    changes.cancel(change, people["admin"])
    change.refresh_from_db()
    assert change.status == PatchChangeStatus.CANCELLED
    assert PatchRun.objects.get(change=change, host__name="b").state == PatchRunState.SKIPPED
    assert refused(changes.cancel, change, people["admin"]).status == 409


def test_outside_its_windows_a_change_is_scheduled_and_started_once(
    project: Project, people: Any, queued: list[Any]
) -> None:
    now = timezone.now()
    later = (now + timedelta(hours=3)).replace(second=0, microsecond=0)
    MaintenanceWindow.objects.create(project=project, weekday=None, start=later.time(), duration_minutes=60)
    change = approved(planned(project, people, {"a": HOST_A, "b": HOST_A}), people)
    changes.start_apply(change, people["admin"])
    change.refresh_from_db()
    assert (change.status, change.not_before) == (PatchChangeStatus.SCHEDULED, later)
    assert queued == [] and set(change.runs.values_list("state", flat=True)) == {PatchRunState.WAITING}
    assert AuditEntry.objects.get(action="patch.apply").after == {"scheduled": later.isoformat()}
    assert schedule.start_due(now) == []
    assert schedule.start_due(later + timedelta(minutes=1)) == [change.pk]
    assert schedule.start_due(later + timedelta(minutes=2)) == []  # claimed once
    a = PatchRun.objects.get(change=change, host__name="a")
    assert queued == [(APPLY, (a.pk,))]


def test_a_due_change_whose_window_closed_waits_for_the_next(
    project: Project, people: Any, queued: list[Any]
) -> None:
    MaintenanceWindow.objects.create(project=project, weekday=None, start=time(1, 0), duration_minutes=30)
    change = approved(planned(project, people, {"a": HOST_A}), people)
    changes.start_apply(change, people["admin"])
    change.refresh_from_db()
    assert change.not_before is not None
    missed = change.not_before + timedelta(hours=2)  # the watcher was down during the window
    assert schedule.start_due(missed) == [] and queued == []
    change.refresh_from_db()
    assert change.status == PatchChangeStatus.SCHEDULED and change.not_before == missed.replace(
        hour=1, minute=0, second=0, microsecond=0
    ) + timedelta(days=1)


def test_a_run_is_carried_out_once_and_one_left_applying_fails(
    project: Project, people: Any, queued: list[Any]
) -> None:
    change = approved(planned(project, people, {"a": HOST_A, "b": HOST_A}, pause_on_failure=False), people)
    changes.start_apply(change, people["admin"])
    a = PatchRun.objects.get(change=change, host__name="a")
    # Its worker died: the redelivered message finds it applying and fails it, never runs it.
    PatchRun.objects.filter(pk=a.pk).update(state=PatchRunState.APPLYING, heartbeat=timezone.now())
    assert tasks.apply_patch_run(a.pk) == "skipped"
    a.refresh_from_db()
    assert (a.state, a.reason) == (PatchRunState.FAILED, running.WORKER_STOPPED)
    assert AuditEntry.objects.filter(action="patch.host_failed").count() == 1
    # The change moved on to b; a third delivery of a's message does nothing.
    b = PatchRun.objects.get(change=change, host__name="b")
    assert queued[-1] == (APPLY, (b.pk,))
    assert tasks.apply_patch_run(a.pk) == "skipped"
    assert AuditEntry.objects.filter(action="patch.host_failed").count() == 1


def test_the_sweep_fails_a_run_without_a_heartbeat_past_the_engines_timeouts(
    project: Project, people: Any, queued: list[Any]
) -> None:
    change = approved(planned(project, people, {"a": HOST_A}), people)
    changes.start_apply(change, people["admin"])
    now = timezone.now()
    PatchRun.objects.filter(change=change).update(state=PatchRunState.APPLYING, heartbeat=now)
    assert schedule.sweep_stuck(now + schedule.STUCK_AFTER - timedelta(seconds=1)) == 0
    assert schedule.sweep_stuck(now + schedule.STUCK_AFTER + timedelta(seconds=1)) == 1
    change.refresh_from_db()
    assert change.status == PatchChangeStatus.FAILED
    assert PatchRun.objects.get(change=change).reason == schedule.STUCK
    assert timedelta(minutes=30) < schedule.STUCK_AFTER  # longer than one tdnf run may take


def _result(state: str, *steps: tuple[str, str]) -> apply.ApplyResult:
    return apply.ApplyResult(
        host="a",
        state=state,
        steps=[apply.Step(name, False, "x", command=command) for name, command in steps],
    )


def test_only_a_run_that_changed_its_host_may_revert_its_vm() -> None:
    """The snapshot is the last resort for a host the engine changed and could not put back; a
    plan refused before the update, or a command that could not be built, changed nothing."""
    assert not running.touched(_result("failed: the host changed", ("detect", "which"), ("record", "")))
    assert not running.touched(
        _result("failed: no command", ("detect", "which"), ("record", ""), ("update", ""))
    )
    assert running.touched(_result("rollback failed: x", ("record", ""), ("update", "dnf -y update x")))
    assert running.touched(
        _result("failed: did not come back", ("update", "dnf"), ("reboot", "systemctl reboot"))
    )
    lost = apply.ApplyResult(host="a", state="failed: gone")
    lost.steps.append(
        apply.Step("connection", False, "reset (during the update: its packages are not verified)")
    )
    assert running.touched(lost)
    lost.steps[0] = apply.Step("connection", False, "refused (before any change)")
    assert not running.touched(lost)


def test_advancing_asks_the_database_the_same_number_of_times_for_a_bigger_change(
    project: Project, people: Any, queued: list[Any]
) -> None:
    small = approved(planned(project, people, {"a": HOST_A, "b": HOST_A}, batch_size=1), people)
    big = approved(
        planned(project, people, {f"h{i}": HOST_A for i in range(8)}, batch_size=4),
        people,
    )

    def queries(change: PatchChange, ended: list[str]) -> int:
        changes.start_apply(change, people["admin"])
        PatchRun.objects.filter(change=change, host__name__in=ended).update(state=PatchRunState.APPLIED)
        with CaptureQueriesContext(connection) as seen:
            assert tasks.advance(change.pk) == PatchChangeStatus.APPLYING
        return len(seen.captured_queries)

    assert queries(small, ["a"]) == queries(big, ["h0", "h1", "h2", "h3"])
    assert len(queued) == 2 + 8
