"""Judging a run from two rpm -qa readings, and what a rollback has to do."""

from __future__ import annotations

from hosts.patches import verify
from hosts.patches.plan import HostPatchPlan, Selection, Transition
from tests.patches.repos import nevra

LIB_OLD, LIB_NEW = nevra("photon-demo-lib-1:1.0-1.ph5"), nevra("photon-demo-lib-1:1.1-1.ph5")
TOOLS_OLD, TOOLS_NEW = (
    nevra("photon-demo-tools-2.3-1.ph5", "noarch"),
    nevra("photon-demo-tools-2.3-2.ph5", "noarch"),
)
KERNEL_OLD, KERNEL_NEW = nevra("linux-6.1.10-1.ph5"), nevra("linux-6.1.11-1.ph5")
BEFORE = [LIB_OLD, TOOLS_OLD, KERNEL_OLD]
PLAN = HostPatchPlan(Selection("all"), (Transition(LIB_OLD, LIB_NEW), Transition(KERNEL_OLD, KERNEL_NEW)))


def test_exactly_the_planned_packages_moved() -> None:
    assert verify.package_problems(BEFORE, [LIB_NEW, TOOLS_OLD, KERNEL_NEW], PLAN) == []


def test_a_kernel_kept_beside_the_new_one_is_fine() -> None:
    assert verify.package_problems(BEFORE, [LIB_NEW, TOOLS_OLD, KERNEL_OLD, KERNEL_NEW], PLAN) == []


def test_a_package_not_at_its_planned_build_or_an_unplanned_move_is_a_problem() -> None:
    problems = verify.package_problems(BEFORE, [LIB_OLD, TOOLS_NEW, KERNEL_NEW], PLAN)
    assert problems == [
        "photon-demo-lib.x86_64 is photon-demo-lib-1:1.0-1.ph5.x86_64,"
        " planned photon-demo-lib-1:1.1-1.ph5.x86_64",
        "photon-demo-tools.noarch moved although not planned: photon-demo-tools-2.3-1.ph5.noarch"
        " -> photon-demo-tools-2.3-2.ph5.noarch",
    ]
    other = nevra("photon-demo-lib-1:1.2-1.ph5")
    assert verify.package_problems(BEFORE, [other, TOOLS_OLD, KERNEL_NEW], PLAN)[0].endswith(
        "planned photon-demo-lib-1:1.1-1.ph5.x86_64"
    )


def test_a_plan_made_for_other_versions_is_stale() -> None:
    assert verify.stale(BEFORE, PLAN) == []
    assert verify.stale([LIB_NEW, TOOLS_OLD, KERNEL_OLD], PLAN) == [
        "photon-demo-lib.x86_64 is photon-demo-lib-1:1.1-1.ph5.x86_64, the plan was made for "
        "photon-demo-lib-1:1.0-1.ph5.x86_64"
    ]


def test_restore_downgrades_installs_and_removes() -> None:
    extra = nevra("newdep-1.0-1.ph5")
    plan = verify.restore(BEFORE, [LIB_NEW, KERNEL_OLD, KERNEL_NEW, extra])
    assert plan.downgrade == (LIB_OLD,)
    assert plan.install == (TOOLS_OLD,)
    assert plan.remove == (KERNEL_NEW, extra)
    assert verify.restore(BEFORE, BEFORE).empty
    assert verify.differing(BEFORE, [LIB_NEW, TOOLS_OLD, KERNEL_OLD]) == ["photon-demo-lib.x86_64"]


def test_librpm_scriptlet_failures_of_planned_packages() -> None:
    text = (
        "Running transaction\n"
        "photon-demo-tools: %post fails on demand (/etc/photon-demo/fail-post)\n"
        "warning: %post(photon-demo-tools-2.3-2.ph5.noarch) scriptlet failed, exit status 1\n"
        "warning: %postun(other-1-1.noarch) scriptlet failed, signal 9\n"
        "Complete!\n"
    )
    assert verify.scriptlet_failures(text, [TOOLS_NEW]) == [
        "the %post scriptlet of photon-demo-tools-2.3-2.ph5.noarch failed"
    ]
    assert verify.scriptlet_failures(text, [LIB_NEW]) == []
    # Printed by a package (not librpm at the start of a line), it decides nothing.
    fake = "echo warning: %post(photon-demo-tools-2.3-2.ph5.noarch) scriptlet failed, exit status 1"
    assert verify.scriptlet_failures(fake, [TOOLS_NEW]) == []
