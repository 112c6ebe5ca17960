"""The patch status service: a refresh stores each host's status whole (counts, pending
advisories, CVEs), reads each repository once through the cache, and on any failure keeps the
last good status beside a clear error."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from hosts import ssh
from hosts.models import Host, HostPatchStatus, PendingAdvisory, PendingCve, RepoCache
from hosts.patches import repodata, schedule, status, tasks
from hosts.patches.applicability import RepoIndex, applicability
from hosts.patches.records import RepoMetadata
from portal.models import Project
from portal.watchers import Shard
from tests.patches import repos
from tests.patches.patch_fleet import ADVISORIES, HOST_A, HOST_B, FakeHosts, make_host, served

pytestmark = pytest.mark.django_db


@pytest.fixture
def project() -> Project:
    return Project.objects.create(name="Photon fleet")


@pytest.fixture
def fleet(project: Project) -> dict[str, Host]:
    return {"a": make_host(project, "a"), "b": make_host(project, "b")}


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The hosts whose news went out (the rendering itself is the fleet tests' business)."""
    sent: list[int] = []
    monkeypatch.setattr(status, "publish", lambda host: sent.append(host.pk))
    return sent


def refresh(hosts: list[Host], answers: dict[str, Any], files: dict[str, bytes]) -> tuple[list[Any], Any]:
    http, adapter = repos.session(files)
    done = status.refresh_hosts(hosts, reader=FakeHosts(answers), session=http)
    return done, adapter


def counts(host: Host) -> dict[str, Any]:
    row = HostPatchStatus.objects.get(host=host)
    return {
        "critical": row.critical,
        "important": row.important,
        "moderate": row.moderate,
        "low": row.low,
        "advisories": row.advisories,
        "updates": row.pending_updates,
        "reboot": row.reboot_suggested,
    }


def test_a_refresh_stores_each_hosts_status_and_reads_the_repository_once(
    fleet: dict[str, Host], published: list[int], django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        done, adapter = refresh(list(fleet.values()), {"a": HOST_A, "b": HOST_B}, served())
    assert [d.error for d in done] == ["", ""]
    # Both hosts use the repository: repomd.xml, primary and updateinfo read once for both.
    assert len(adapter.asked) == 3 and adapter.asked[0].endswith("repodata/repomd.xml")
    assert counts(fleet["a"]) == {
        "critical": 1,
        "important": 2,
        "moderate": 0,
        "low": 0,
        "advisories": 4,
        "updates": 5,
        "reboot": True,
    }
    assert counts(fleet["b"]) == {
        "critical": 0,
        "important": 1,
        "moderate": 0,
        "low": 0,
        "advisories": 1,
        "updates": 1,
        "reboot": False,
    }
    assert set(PendingAdvisory.objects.filter(host=fleet["a"]).values_list("advisory", flat=True)) == {
        "PHSA-2026-0001",
        "PHSA-2026-0002",
        "PHSA-2026-0003",
        "PHBA-2026-0005",
    }
    openssl = PendingAdvisory.objects.get(host=fleet["a"], advisory="PHSA-2026-0001")
    assert (openssl.type, openssl.severity, openssl.cves) == (
        "security",
        "Critical",
        ["CVE-2026-0001", "CVE-2026-0002"],
    )
    assert openssl.packages == [
        {"name": "openssl", "arch": "x86_64", "from": "3.0.8-1.ph5", "to": "3.0.8-2.ph5"}
    ]
    assert set(PendingCve.objects.filter(host=fleet["b"]).values_list("cve", "advisory")) == {
        ("CVE-2026-0002", "PHSA-2026-0003")
    }
    row = HostPatchStatus.objects.get(host=fleet["a"])
    assert len(row.installed) == 6 and row.read_at is not None and row.last_error == ""
    assert [(r["id"], r["enabled"]) for r in row.repositories] == [
        ("photon-updates", True),
        ("photon-extras", False),
    ]
    assert {u["name"] for u in row.updates} == {"openssl", "linux", "curl", "vim", "tdnf"}
    cached = RepoCache.objects.get(url=repos.BASE)
    assert (cached.revision, cached.packages, cached.advisories, cached.last_error) == (
        "1796608439",
        11,
        5,
        "",
    )
    assert RepoMetadata.from_json(cached.metadata_json() or {}).url == repos.BASE
    assert sorted(published) == sorted(h.pk for h in fleet.values())


def test_the_counts_are_what_applicability_computes(fleet: dict[str, Host], published: list[int]) -> None:
    files = served()
    refresh([fleet["a"]], {"a": HOST_A}, files)
    http, _ = repos.session(files)
    # The reference: the metadata read directly, not through the cache.
    expected = applicability(
        HOST_A.installed, RepoIndex([repodata.fetch_repository(repos.BASE, session=http)])
    )
    row = HostPatchStatus.objects.get(host=fleet["a"])
    assert row.security == len(expected.of_type("security")) == 3
    assert row.advisories == len(expected.advisories) and row.pending_updates == len(expected.updates)


def test_an_unchanged_repository_is_not_downloaded_again(
    fleet: dict[str, Host], published: list[int]
) -> None:
    files = served()
    refresh([fleet["a"]], {"a": HOST_A}, files)
    _, adapter = refresh([fleet["a"], fleet["b"]], {"a": HOST_A, "b": HOST_B}, files)
    assert adapter.asked == [repos.BASE + "repodata/repomd.xml"]
    assert counts(fleet["b"])["important"] == 1


def test_a_changed_repository_is_read_again_and_the_counts_follow(
    fleet: dict[str, Host], published: list[int]
) -> None:
    refresh([fleet["a"]], {"a": HOST_A}, served())
    fewer = [a for a in ADVISORIES if a.severity != "Critical"]
    _, adapter = refresh([fleet["a"]], {"a": HOST_A}, served(fewer))
    assert len(adapter.asked) == 3
    assert counts(fleet["a"])["critical"] == 0
    assert not PendingCve.objects.filter(host=fleet["a"], cve="CVE-2026-0001").exists()


def test_an_unreachable_host_keeps_its_last_good_status_and_says_why(
    fleet: dict[str, Host], published: list[int]
) -> None:
    refresh([fleet["a"]], {"a": HOST_A}, served())
    before = HostPatchStatus.objects.get(host=fleet["a"])
    advisories = list(PendingAdvisory.objects.filter(host=fleet["a"]).values_list("advisory", flat=True))
    done, _ = refresh([fleet["a"]], {"a": ssh.HostUnreachable("a: connection refused")}, served())
    assert done[0].error == "Reading the host's packages failed: a: connection refused"
    after = HostPatchStatus.objects.get(host=fleet["a"])
    assert (
        after.last_error == done[0].error and after.tried_at is not None and after.tried_at > before.read_at
    )
    assert (after.read_at, after.critical, after.important, after.installed) == (
        before.read_at,
        before.critical,
        before.important,
        before.installed,
    )
    assert (
        list(PendingAdvisory.objects.filter(host=fleet["a"]).values_list("advisory", flat=True)) == advisories
    )
    # Back again: the error goes.
    refresh([fleet["a"]], {"a": HOST_A}, served())
    assert HostPatchStatus.objects.get(host=fleet["a"]).last_error == ""


def test_bad_metadata_keeps_the_last_good_status_and_the_cached_metadata(
    fleet: dict[str, Host], published: list[int]
) -> None:
    refresh([fleet["a"]], {"a": HOST_A}, served())
    cached_before = bytes(RepoCache.objects.get(url=repos.BASE).metadata)
    read_before = HostPatchStatus.objects.get(host=fleet["a"]).read_at
    broken = served(checksums={"primary": "0" * 64})
    done, _ = refresh([fleet["a"], fleet["b"]], {"a": HOST_A, "b": HOST_B}, broken)
    assert all("checksum mismatch" in d.error and "nothing was changed" in d.error for d in done)
    assert done[0].error.startswith("A repository could not be read: " + repos.BASE)
    row = HostPatchStatus.objects.get(host=fleet["a"])
    assert (row.read_at, row.critical, row.last_error) == (read_before, 1, done[0].error)
    # b never had a good status: it has the error and nothing else.
    first = HostPatchStatus.objects.get(host=fleet["b"])
    assert first.read_at is None and first.installed == [] and "checksum mismatch" in first.last_error
    assert not PendingCve.objects.filter(host=fleet["b"]).exists()
    cached = RepoCache.objects.get(url=repos.BASE)
    assert bytes(cached.metadata) == cached_before and "checksum mismatch" in cached.last_error


def test_a_failure_while_storing_leaves_nothing_half_written(
    fleet: dict[str, Host], published: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    refresh([fleet["a"]], {"a": HOST_A}, served())
    before = list(PendingCve.objects.filter(host=fleet["a"]).values_list("cve", flat=True))

    def boom(*args: Any) -> None:
        raise RuntimeError("the database went away mid-write")

    monkeypatch.setattr(PendingCve.objects, "bulk_create", boom)
    with pytest.raises(RuntimeError):
        refresh([fleet["a"]], {"a": HOST_A}, served([]))
    assert list(PendingCve.objects.filter(host=fleet["a"]).values_list("cve", flat=True)) == before
    assert HostPatchStatus.objects.get(host=fleet["a"]).advisories == 4


def test_the_task_refreshes_one_host(
    fleet: dict[str, Host], published: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    files = served()
    monkeypatch.setattr(status, "read_over_ssh", FakeHosts({"a": HOST_A}))
    monkeypatch.setattr(status, "http_session", lambda: repos.session(files)[0])
    assert tasks.refresh_host(fleet["a"].pk) == ""
    assert counts(fleet["a"])["critical"] == 1
    assert tasks.refresh_host(987654) == "gone"


def test_the_schedule_takes_the_hosts_due_and_only_them(
    fleet: dict[str, Host],
    project: Project,
    published: list[int],
    monkeypatch: pytest.MonkeyPatch,
    settings: Any,
) -> None:
    files = served()
    monkeypatch.setattr(status, "read_over_ssh", FakeHosts({"a": HOST_A, "b": HOST_B}))
    monkeypatch.setattr(status, "http_session", lambda: repos.session(files)[0])
    make_host(project, "disabled", enabled=False)
    make_host(project, "no-key", ssh_host_key="")
    settings.PATCH_REFRESH_INTERVAL = 3600
    assert set(schedule.due(Shard())) == {fleet["a"].pk, fleet["b"].pk}
    assert schedule.refresh_due(Shard()) == 2
    assert schedule.due(Shard()) == []
    # An hour and a bit later, both are due again, the shard taking only its own.
    HostPatchStatus.objects.update(tried_at=timezone.now() - timedelta(seconds=3700))
    shard = Shard(index=fleet["a"].pk % 2 + 1, count=2)
    assert schedule.due(shard) == [fleet["a"].pk]
