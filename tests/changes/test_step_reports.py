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
