"""A patch change on the lab's two Photon-like hosts, run by its Celery tasks (a real worker
when a broker is configured, else the portal's own threads): batches of one host, pause on
failure. The first host's update fails (its %post scriptlet) and is rolled back; the change
pauses with the second host untouched; resumed, the second host is patched and the change
ends partly applied."""

from __future__ import annotations

import shlex
from typing import Any

import pytest

from hosts.models import HostPatchStatus, PatchChange, PatchChangeStatus, PatchRun, PatchRunState
from hosts.patches import changes, status
from hosts.patches.plan import Selection
from hosts.patches.records import Nevra
from portal.models import AuditEntry, Project, Role
from tests.lab.common import wait_until
from tests.patches.lab_packages import LabHost, host_for, rpm, sh

pytestmark = pytest.mark.lab

TOOLS_OLD = Nevra("photon-demo-tools", 0, "2.3", "1.ph5", "noarch")
TOOLS_NEW = Nevra("photon-demo-tools", 0, "2.3", "2.ph5", "noarch")


def status_of(change: PatchChange, *wanted: str) -> str:
    found = wait_until(
        lambda: (
            PatchChange.objects.filter(pk=change.pk, status__in=wanted)
            .values_list("status", flat=True)
            .first()
        ),
        timeout=300,
        what=f"the patch change {' or '.join(wanted)}",
    )
    return str(found)


def test_a_failing_first_batch_pauses_and_resuming_patches_the_second_host(
    lab_rpm: dict[str, Any],
    lab_hosts: list[LabHost],
    transactional_db: None,
    celery_worker_if_brokered: None,
    make_user: Any,
    restored: Any,
) -> None:
    project = Project.objects.create(name="lab patching")
    # Batches follow the host names: the first name's update fails.
    first, second = sorted(lab_hosts[:2], key=lambda lab: str(lab["name"]))
    before = {str(lab["name"]): restored(lab) for lab in (first, second)}
    assert all(TOOLS_OLD in packages for packages in before.values())
    code, said = sh(first, f"touch {shlex.quote(lab_rpm['fail_post'])}")
    assert code == 0, said
    hosts = [host_for(lab, project) for lab in (first, second)]
    assert [r.error for r in status.refresh_hosts(hosts)] == ["", ""]
    prov = make_user("prov", project=project, role=Role.PROVISIONER)
    admin = make_user("padmin", project=project, role=Role.PROJECT_ADMIN)

    change = changes.plan_change(
        prov,
        project.pk,
        host_ids=[h.pk for h in hosts],
        selection=Selection("advisories", (lab_rpm["bugfix_advisory"],)),
        batch_size=1,
        pause_on_failure=True,
    )
    runs = {r.host.name: r for r in change.runs.select_related("host")}
    assert [(runs[str(lab["name"])].batch, runs[str(lab["name"])].state) for lab in (first, second)] == [
        (1, PatchRunState.PLANNED),
        (2, PatchRunState.PLANNED),
    ]
    changes.submit(change, prov)
    changes.approve(change, admin, "after hours")
    changes.start_apply(change, admin)

    assert status_of(
        change, PatchChangeStatus.PAUSED, PatchChangeStatus.PARTIAL, PatchChangeStatus.FAILED
    ) == (PatchChangeStatus.PAUSED)
    one = PatchRun.objects.get(change=change, host__name=first["name"])
    two = PatchRun.objects.get(change=change, host__name=second["name"])
    assert one.state == PatchRunState.ROLLED_BACK, (one.reason, one.result)
    assert "the %post scriptlet of photon-demo-tools-2.3-2.ph5.noarch failed" in one.reason
    assert [s["name"] for s in one.result["steps"]] == [
        "detect",
        "record",
        "update",
        "rollback: downgrade",
        "verify rollback",
    ]
    assert one.progress == 100 and one.finished is not None and one.snapshot_state == ""
    # The first host is as it was; the second was never touched.
    assert rpm(first) == before[str(first["name"])]
    assert two.state == PatchRunState.WAITING and two.started is None
    assert rpm(second) == before[str(second["name"])]
    assert AuditEntry.objects.filter(action="patch.host_rolled_back", object_id=str(change.pk)).count() == 1
    assert AuditEntry.objects.filter(action="patch.paused").count() == 1

    changes.resume(change, admin)
    assert status_of(
        change, PatchChangeStatus.PARTIAL, PatchChangeStatus.APPLIED, PatchChangeStatus.FAILED
    ) == (PatchChangeStatus.PARTIAL)
    two.refresh_from_db()
    assert two.state == PatchRunState.APPLIED, (two.reason, two.result)
    assert two.step == "done" and two.progress == 100 and two.snapshot_remove_after is None  # no VM
    after = rpm(second)
    assert after - before[str(second["name"])] == {TOOLS_NEW} and TOOLS_OLD not in after
    # Each host's patch status was read again after its run: the second no longer has the bugfix pending.
    two_status = HostPatchStatus.objects.get(host__name=second["name"], host__project=project)
    assert (
        two.finished is not None and two_status.tried_at is not None and two_status.tried_at >= two.finished
    )
    assert "photon-demo-tools" not in [u["name"] for u in two_status.updates]
    assert AuditEntry.objects.filter(action="patch.host_applied").count() == 1
