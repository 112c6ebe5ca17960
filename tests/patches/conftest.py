"""The patch tests' shared fixtures: a lab host's packages put back after a test, and two hosts
of one project whose patch status was read from the served test repository (no lab)."""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from typing import Any

import pytest

from hosts.patches import status, verify
from hosts.patches.records import Nevra
from portal.models import Project
from tests.lab import rpm_repos
from tests.patches import repos
from tests.patches.lab_packages import LabHost, rpm, sh
from tests.patches.patch_fleet import HOST_A, HOST_B, FakeHosts, make_host, served


@pytest.fixture
def restored(lab_rpm: dict[str, Any]) -> Iterator[Any]:
    """Yields a function that registers a host and returns its packages; after the test they
    are put back as they were, and the fail-post marker goes."""
    recorded: list[tuple[LabHost, set[Nevra]]] = []

    def register(lab: LabHost) -> set[Nevra]:
        before = rpm(lab)
        recorded.append((lab, before))
        return before

    yield register
    for lab, before in recorded:
        sh(lab, f"rm -f {shlex.quote(lab_rpm['fail_post'])}")
        put_back = verify.restore(before, rpm(lab))
        for verb, packages in (
            ("downgrade", put_back.downgrade),
            ("install", put_back.install),
            ("remove", put_back.remove),
        ):
            if packages:
                code, said = sh(lab, rpm_repos.dnf_command(verb, *map(str, packages)))
                assert code == 0, said
        assert rpm(lab) == before


@pytest.fixture
def project() -> Project:
    return Project.objects.create(name="web")


@pytest.fixture
def hosts(project: Project, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Hosts a and b of ``project``, their status read from the served repository: a lacks
    openssl's security fix PHSA-2026-0001, b has it. The status's own news is not sent."""
    monkeypatch.setattr(status, "publish", lambda host: None)
    made = [make_host(project, name) for name in ("a", "b")]
    http, _ = repos.session(served())
    done = status.refresh_hosts(made, reader=FakeHosts({"a": HOST_A, "b": HOST_B}), session=http)
    assert [d.error for d in done] == ["", ""]
    return made
