"""On the lab's Photon-like hosts: the portal's patch status equals what the package manager
itself says on the host (dnf, the stand-in for tdnf: same repositories, same RPM database).

Only these tests parse dnf's output: it is the reference the portal is held to, never an
input of the portal's."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from hosts import ssh
from hosts.patches import installed, repodata
from hosts.patches.applicability import HostApplicability, RepoIndex, applicability
from hosts.patches.records import RepoMetadataError
from tests.lab import rpm_repos

LabHost = dict[str, Any]


def _access(lab: LabHost) -> ssh.Access:
    key = Path(str(lab["private_key"])).read_text()
    return ssh.Access(
        str(lab["name"]), str(lab["address"]), int(lab["port"]), "root", key, str(lab["host_key"])
    )


async def _on_host(lab: LabHost, command: str | None = None) -> tuple[installed.HostPackages, str, int]:
    async with ssh.connect(_access(lab)) as conn:
        packages = await installed.read_host(conn)
        said, status = "", 0
        if command:
            result = await ssh.run(conn, command, timeout=300)
            said, status = str(result.stdout or ""), int(result.exit_status or 0)
        return packages, said, status


def _portal(lab: LabHost) -> tuple[installed.HostPackages, HostApplicability]:
    packages, _, _ = asyncio.run(_on_host(lab))
    repos = [repodata.fetch_repository(url) for url in installed.enabled_urls(packages)]
    return packages, applicability(packages.installed, RepoIndex(repos))


def _dnf(lab: LabHost, *args: str) -> tuple[str, int]:
    _, said, status = asyncio.run(_on_host(lab, rpm_repos.dnf_command("--refresh", *args)))
    return said, status


def _dnf_advisories(lab: LabHost) -> set[tuple[str, str]]:
    """`dnf updateinfo list`: ``ID  TYPE/SEVERITY  NEVRA`` per applicable (advisory, package)."""
    said, status = _dnf(lab, "updateinfo", "list")
    assert status == 0, said
    return {(line.split()[0], line.split()[-1]) for line in said.splitlines() if line.strip()}


def _dnf_updates(lab: LabHost) -> set[tuple[str, str]]:
    """`dnf check-update`: ``NAME.ARCH  [EPOCH:]VERSION-RELEASE  REPO``; exit 100 when any."""
    said, status = _dnf(lab, "check-update")
    assert status in (0, 100), said
    rows = [line.split() for line in said.splitlines() if line.strip()]
    return {(row[0], row[1]) for row in rows if len(row) == 3}


def _portal_updates(result: HostApplicability) -> set[tuple[str, str]]:
    return {(f"{u.available.name}.{u.available.arch}", u.available.evr) for u in result.updates}


def _portal_advisories(result: HostApplicability) -> set[tuple[str, str]]:
    return {(a.advisory.id, str(p)) for a in result.advisories for p in a.packages}


@pytest.mark.parametrize("index", [0, 1], ids=["base-versions", "lib-updated"])
def test_the_portal_says_what_dnf_says(lab_rpm: dict[str, Any], lab_hosts: list[LabHost], index: int) -> None:
    lab = lab_hosts[index]
    packages, result = _portal(lab)
    assert (packages.releasever, packages.basearch) == (lab_rpm["releasever"], lab_rpm["basearch"])
    assert {r.id for r in packages.repos if r.enabled} == {"photon-demo-base", "photon-demo-updates"}
    assert _portal_updates(result) == _dnf_updates(lab)
    assert _portal_advisories(result) == _dnf_advisories(lab)
    # Not vacuous: the lab's hosts are behind, and differ from one another.
    expected_security = {"linux-demo-6.1.11-1.ph5.x86_64"} | (
        {"photon-demo-lib-1:1.1-1.ph5.x86_64"} if index == 0 else set()
    )
    (security,) = result.of_type("security")
    assert security.advisory.id == lab_rpm["security_advisory"]
    assert {str(p) for p in security.packages} == expected_security
    assert list(security.advisory.cves) == lab_rpm["cves"]
    assert security.advisory.severity == "Important" and security.reboot_suggested
    (bugfix,) = result.of_type("bugfix")
    assert bugfix.advisory.id == lab_rpm["bugfix_advisory"] and not bugfix.reboot_suggested


def test_installed_packages_are_what_rpm_lists(lab_rpm: dict[str, Any], lab_hosts: list[LabHost]) -> None:
    packages, said, _ = asyncio.run(_on_host(lab_hosts[0], "rpm -qa"))
    assert {f"{p.name}-{p.version}-{p.release}.{p.arch}" for p in packages.installed} == set(said.split())
    assert {p.name for p in packages.installed} == set(rpm_repos.DEMOS)


def test_after_an_update_both_agree_it_is_gone(lab_rpm: dict[str, Any], lab_hosts: list[LabHost]) -> None:
    lab = lab_hosts[0]
    said, status = _dnf(lab, "upgrade", "photon-demo-tools")
    assert status == 0, said
    try:
        _, result = _portal(lab)
        assert not any(u.installed.name == "photon-demo-tools" for u in result.updates)
        assert lab_rpm["bugfix_advisory"] not in {a.advisory.id for a in result.advisories}
        assert _portal_updates(result) == _dnf_updates(lab)
        assert _portal_advisories(result) == _dnf_advisories(lab)
    finally:
        said, status = _dnf(lab, "downgrade", "photon-demo-tools-2.3-1.ph5")
        assert status == 0, said


@pytest.mark.parametrize(
    ("repo", "message"),
    [
        (
            "broken-checksum",
            r"primary\.xml\.xz: checksum mismatch \(sha256 is [0-9a-f]{64}, repomd\.xml says",
        ),
        ("broken-truncated", r"primary\.xml\.gz: the primary XML is truncated or malformed"),
    ],
)
def test_bad_metadata_served_is_a_clear_error_and_changes_nothing(
    lab_rpm: dict[str, Any], repo: str, message: str
) -> None:
    url = lab_rpm["urls"][repo]
    good = repodata.fetch_repository(lab_rpm["urls"]["updates"])
    # The repository was good when last read, and is broken now.
    cache = {url: {**good.to_json(), "url": url}}
    before = {key: dict(value) for key, value in cache.items()}
    with pytest.raises(RepoMetadataError, match=message) as error:
        repodata.refresh(cache, url)
    assert str(error.value).startswith(url + "repodata/")
    assert "nothing was changed" in str(error.value)
    assert cache == before


def test_the_tools_update_fails_in_post_on_demand(lab_rpm: dict[str, Any], lab_hosts: list[LabHost]) -> None:
    """What rollback tests will use: while the marker file exists, photon-demo-tools' update fails
    its %post scriptlet. rpm does not undo a transaction for a failed %post: the new version
    stays installed, and putting the old one back is a downgrade."""
    lab = lab_hosts[1]
    marker = lab_rpm["fail_post"]
    upgrade = rpm_repos.dnf_command("upgrade", "photon-demo-tools") + " 2>&1"
    downgrade = rpm_repos.dnf_command("downgrade", "photon-demo-tools-2.3-1.ph5")
    try:
        _, said, _ = asyncio.run(_on_host(lab, f"touch {marker} && {upgrade}"))
        assert "Error in POSTIN scriptlet in rpm package photon-demo-tools" in said
        packages, _, _ = asyncio.run(_on_host(lab))
        assert "photon-demo-tools-2.3-2.ph5.noarch" in {str(p) for p in packages.installed}
    finally:
        _, said, status = asyncio.run(_on_host(lab, f"rm -f {marker} && {downgrade} 2>&1"))
        assert status == 0, said
    packages, _, _ = asyncio.run(_on_host(lab))
    assert "photon-demo-tools-2.3-1.ph5.noarch" in {str(p) for p in packages.installed}
