"""On the lab's Photon-like hosts (their own RPM database and .repo files, the lab's repositories
served over HTTP): a refresh asked as a person would, run by the task (a real worker when a
broker is configured), stores counts equal to what applicability computes from the host and the
repositories read directly, and the fleet page's CVE filter finds the host."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from django.urls import reverse

from hosts import ssh
from hosts.models import Host, HostPatchStatus, PendingAdvisory, RepoCache
from hosts.patches import installed, repodata, services, status
from hosts.patches.applicability import HostApplicability, RepoIndex, applicability
from portal.models import Project, Role
from tests.lab.common import wait_until
from tests.patches.lab_packages import LabHost, host_for

pytestmark = pytest.mark.lab


def reference(host: Host) -> tuple[list[str], HostApplicability]:
    """The host's enabled repositories and what applies, computed here from the host and the
    repositories read directly (no cache)."""

    async def read() -> installed.HostPackages:
        async with ssh.connect(ssh.Access.of(host)) as conn:
            return await installed.read_host(conn)

    packages = asyncio.run(read())
    repos = [repodata.fetch_repository(url) for url in installed.enabled_urls(packages)]
    return [r.url for r in repos], applicability(packages.installed, RepoIndex(repos))


def test_a_lab_host_refreshed_by_the_task_counts_what_applicability_computes(
    lab_rpm: dict[str, Any],
    lab_hosts: list[LabHost],
    transactional_db: None,
    celery_worker_if_brokered: None,
    make_user: Any,
    client: Any,
) -> None:
    project = Project.objects.create(name="lab fleet")
    host = host_for(lab_hosts[0], project)
    person = make_user("prov", project=project, role=Role.PROVISIONER)
    services.request_refresh(person, host.pk)
    found = wait_until(
        lambda: HostPatchStatus.objects.filter(host=host).exclude(read_at=None, last_error="").first(),
        timeout=120,
        what="the host's patch status stored by the task",
    )
    assert isinstance(found, HostPatchStatus) and found.last_error == "", found.last_error
    urls, expected = reference(host)
    security = expected.of_type("security")
    assert [a.advisory.id for a in security] == [lab_rpm["security_advisory"]]
    assert found.important == len([a for a in security if a.advisory.severity == "Important"]) == 1
    assert (found.critical, found.moderate, found.low, found.security_other) == (0, 0, 0, 0)
    assert found.advisories == len(expected.advisories) == 2
    assert found.pending_updates == len(expected.updates) > 0
    assert found.reboot_suggested is expected.reboot_suggested is True
    assert {p.advisory for p in PendingAdvisory.objects.filter(host=host)} == {
        lab_rpm["security_advisory"],
        lab_rpm["bugfix_advisory"],
    }
    assert (found.releasever, found.basearch) == (lab_rpm["releasever"], lab_rpm["basearch"])
    # Each of the host's enabled repositories is cached, by the URL its .repo file gives.
    assert len(urls) == 2
    assert set(RepoCache.objects.exclude(metadata=b"").values_list("url", flat=True)) >= set(urls)

    client.force_login(person)
    exposed = client.get(reverse("hosts:index"), {"cve": lab_rpm["cves"][0]}).content.decode()
    assert f'id="host-{host.pk}"' in exposed
    elsewhere = client.get(reverse("hosts:index"), {"cve": "CVE-2026-99999"}).content.decode()
    assert f'id="host-{host.pk}"' not in elsewhere and "No host matches." in elsewhere
    card = client.get(reverse("hosts:host_updates", args=[host.pk])).content.decode()
    assert f'data-advisory="{lab_rpm["security_advisory"]}"' in card and lab_rpm["cves"][1] in card


def test_a_lab_host_that_cannot_be_reached_keeps_its_status(
    lab_rpm: dict[str, Any], lab_hosts: list[LabHost], transactional_db: None
) -> None:
    project = Project.objects.create(name="lab fleet")
    host = host_for(lab_hosts[1], project)
    (first,) = status.refresh_hosts([host])
    assert first.error == ""
    good = HostPatchStatus.objects.get(host=host)
    # The second lab host has the lib's fix: the security advisory is pending for linux-demo alone.
    assert (good.important, good.advisories) == (1, 2)
    Host.objects.filter(pk=host.pk).update(ssh_port=1)
    (second,) = status.refresh_hosts([Host.objects.get(pk=host.pk)])
    assert second.error.startswith("Reading the host's packages failed:")
    after = HostPatchStatus.objects.get(host=host)
    assert (after.read_at, after.advisories, after.last_error) == (good.read_at, 2, second.error)
