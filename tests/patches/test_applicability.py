"""Applicability, computed in the portal from installed packages and cached metadata."""

from __future__ import annotations

from hosts.patches.applicability import RepoIndex, applicability
from hosts.patches.records import Advisory, AdvisoryPackage, Nevra, RepoMetadata
from tests.patches.repos import nevra

BASE = [
    nevra("photon-demo-lib-1:1.0-1.ph5"),
    nevra("photon-demo-tools-2.3-1.ph5", "noarch"),
    nevra("linux-demo-6.1.10-1.ph5"),
]
UPDATES = [
    nevra("photon-demo-lib-1:1.1-1.ph5"),
    nevra("photon-demo-tools-2.3-2.ph5", "noarch"),
    nevra("linux-demo-6.1.11-1.ph5"),
]
SECURITY = Advisory(
    id="PHSA-1",
    type="security",
    severity="Important",
    title="t",
    issued="",
    cves=("CVE-2026-10001", "CVE-2026-10002"),
    packages=(AdvisoryPackage(UPDATES[0]), AdvisoryPackage(UPDATES[2], reboot_suggested=True)),
)
BUGFIX = Advisory("PHBA-2", "bugfix", "", "t", "", (), (AdvisoryPackage(UPDATES[1]),))


def _repos(
    advisories: tuple[Advisory, ...] = (SECURITY, BUGFIX), updates: list[Nevra] = UPDATES
) -> RepoIndex:
    return RepoIndex(
        [
            RepoMetadata("http://r/base/", "1", "a", tuple(BASE)),
            RepoMetadata("http://r/updates/", "1", "b", tuple(updates), advisories),
        ]
    )


def _summary(installed: list[Nevra], index: RepoIndex) -> tuple[set[str], set[tuple[str, str]]]:
    result = applicability(installed, index)
    return (
        {f"{u.installed} -> {u.available}" for u in result.updates},
        {(a.advisory.id, str(p)) for a in result.advisories for p in a.packages},
    )


def test_a_host_on_the_base_versions_has_every_update_and_advisory() -> None:
    result = applicability(BASE, _repos())
    assert [(str(u.available), u.repo) for u in result.updates] == [
        ("linux-demo-6.1.11-1.ph5.x86_64", "http://r/updates/"),
        ("photon-demo-lib-1:1.1-1.ph5.x86_64", "http://r/updates/"),
        ("photon-demo-tools-2.3-2.ph5.noarch", "http://r/updates/"),
    ]
    assert [a.advisory.id for a in result.advisories] == ["PHBA-2", "PHSA-1"]
    assert [a.advisory.id for a in result.of_type("security")] == ["PHSA-1"]
    assert result.reboot_suggested


def test_an_advisory_applies_only_for_the_packages_still_below_the_fix() -> None:
    host = [UPDATES[0], BASE[1], BASE[2]]
    updates, advisories = _summary(host, _repos())
    assert advisories == {
        ("PHSA-1", "linux-demo-6.1.11-1.ph5.x86_64"),
        ("PHBA-2", "photon-demo-tools-2.3-2.ph5.noarch"),
    }
    assert "photon-demo-lib-1:1.0-1.ph5.x86_64 -> photon-demo-lib-1:1.1-1.ph5.x86_64" not in updates


def test_an_up_to_date_host_has_nothing() -> None:
    result = applicability(UPDATES, _repos())
    assert result.updates == () and result.advisories == () and not result.reboot_suggested


def test_a_package_not_installed_brings_no_advisory() -> None:
    _, advisories = _summary([BASE[1]], _repos())
    assert advisories == {("PHBA-2", "photon-demo-tools-2.3-2.ph5.noarch")}


def test_an_advisory_whose_fix_is_not_available_does_not_apply() -> None:
    """The advisory names linux-demo 6.1.11, the repositories only have 6.1.10."""
    index = _repos(updates=UPDATES[:2])
    updates, advisories = _summary(BASE, index)
    assert ("PHSA-1", "linux-demo-6.1.11-1.ph5.x86_64") not in advisories
    assert ("PHSA-1", "photon-demo-lib-1:1.1-1.ph5.x86_64") in advisories
    assert not any(u.startswith("linux-demo") for u in updates)


def test_the_epoch_outranks_the_version() -> None:
    newer_version_lower_epoch = Nevra("photon-demo-lib", 0, "9.9", "1.ph5", "x86_64")
    index = RepoIndex([RepoMetadata("http://r/", "1", "a", (newer_version_lower_epoch,))])
    assert applicability([BASE[0]], index).updates == ()


def test_the_newest_installed_kernel_decides() -> None:
    """An old kernel kept beside the fixed one is not a pending fix (install-only packages)."""
    host = [BASE[2], UPDATES[2]]
    updates, advisories = _summary(host, _repos())
    assert not any(u.startswith("linux-demo") for u in updates)
    assert not any(p.startswith("linux-demo") for _, p in advisories)


def test_architectures_must_fit() -> None:
    aarch64 = Nevra("linux-demo", 0, "6.1.10", "1.ph5", "aarch64")
    updates, advisories = _summary([aarch64], _repos())
    assert updates == set() and advisories == set()
    # noarch fits any architecture, either way.
    moved = Nevra("photon-demo-tools", 0, "2.4", "1.ph5", "x86_64")
    index = _repos(updates=[*UPDATES, moved])
    updates, _ = _summary([BASE[1]], index)
    assert updates == {"photon-demo-tools-2.3-1.ph5.noarch -> photon-demo-tools-2.4-1.ph5.x86_64"}


def test_the_newest_of_several_repositories_is_offered_and_an_advisory_counts_once() -> None:
    newer = Nevra("linux-demo", 0, "6.1.12", "1.ph5", "x86_64")
    index = RepoIndex(
        [
            RepoMetadata("http://r/base/", "1", "a", tuple(BASE)),
            RepoMetadata("http://r/updates/", "1", "b", tuple(UPDATES), (SECURITY,)),
            RepoMetadata("http://mirror/updates/", "1", "c", (newer,), (SECURITY,)),
        ]
    )
    result = applicability(BASE, index)
    linux = next(u for u in result.updates if u.installed.name == "linux-demo")
    assert (linux.available, linux.repo) == (newer, "http://mirror/updates/")
    assert [a.advisory.id for a in result.advisories] == ["PHSA-1"]
