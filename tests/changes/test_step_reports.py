"""A run's step reports are written behind its SSH work, in the order made, and all of them
before the run is finished (hosts.changes.apply.Reports)."""

from __future__ import annotations

import asyncio

import pytest

from hosts.changes import apply
from hosts.changes.runs import finish_run
from hosts.models import Change, ChangeRun, Host
from portal.models import Project

pytestmark = pytest.mark.django_db(transaction=True)  # the reports are written on another thread


def test_reports_land_in_order_and_before_the_run_ends() -> None:
    project = Project.objects.create(name="fleet")
    host = Host.objects.create(project=project, name="h1", docker_url="tcp://10.0.0.1:2376")
    change = Change.objects.create(project=project, title="t", settings={}, status="applying")
    run = ChangeRun.objects.create(change=change, host=host, state="applying")

    async def applying() -> None:
        report = apply.Reports(run.pk)
        for n, step in enumerate(("reading", "backing up", "validating", "writing", "verifying")):
            await report(step, 10 * (n + 1), f"line {n}")  # returns at once: not waited for
        assert report.step == "verifying"
        await report.settled()
        await apply._db(finish_run)(run.pk, "applied", "")

    asyncio.run(applying())
    run.refresh_from_db()
    lines = [line.split(" ", 1)[1] for line in run.log.splitlines()]
    assert lines == ["line 0", "line 1", "line 2", "line 3", "line 4", "Applied"]
    # No report landed after the end: the card says done, at 100%.
    assert (run.state, run.step, run.progress) == ("applied", "done", 100)


def test_reports_made_while_a_write_is_under_way_are_written_together(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A push's hosts share one database thread: the reports of every run queued behind a
    write go in the next one, not one write each."""
    from hosts.changes import step_reports

    project = Project.objects.create(name="fleet")
    change = Change.objects.create(project=project, title="t", settings={}, status="applying")
    runs = [
        ChangeRun.objects.create(
            change=change,
            host=Host.objects.create(project=project, name=f"h{n}", docker_url=f"tcp://10.0.0.{n}:2376"),
            state="applying",
        )
        for n in (1, 2, 3)
    ]
    batches: list[list[int]] = []
    real = step_reports.report_steps

    def counted(reports):  # type: ignore[no-untyped-def]
        batches.append(sorted(reports))
        real(reports)

    monkeypatch.setattr(step_reports, "report_steps", counted)

    async def applying() -> None:
        reporters = [step_reports.Reports(run.pk) for run in runs]
        for n, step in enumerate(("reading", "backing up", "validating", "writing")):
            for report in reporters:
                await report(step, 10 * (n + 1), f"{step} {report.run_id}")
        for report in reporters:
            await report.settled()

    asyncio.run(applying())
    # The writer starts when the reporters next wait: all twelve reports in one write.
    assert batches == [sorted(run.pk for run in runs)]
    for run in runs:
        run.refresh_from_db()
        lines = [line.split(" ", 1)[1] for line in run.log.splitlines()]
        assert lines == [f"{step} {run.pk}" for step in ("reading", "backing up", "validating", "writing")]
        assert (run.step, run.progress) == ("writing", 40)


def test_a_report_that_could_not_be_written_fails_its_run_not_another(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from django.db import OperationalError

    from hosts.changes import step_reports

    def down(reports):  # type: ignore[no-untyped-def]
        raise OperationalError("the database went away")

    monkeypatch.setattr(step_reports, "report_steps", down)

    async def applying() -> None:
        report = step_reports.Reports(1)
        await report("reading", 15, "reading")
        with pytest.raises(OperationalError):
            await report.settled()
        await step_reports.Reports(2).settled()  # nothing of its own was lost: returns

    asyncio.run(applying())
