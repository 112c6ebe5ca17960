"""The patch lab tests' shared fixture: a lab host's packages put back after a test."""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from typing import Any

import pytest

from hosts.patches import verify
from hosts.patches.records import Nevra
from tests.lab import rpm_repos
from tests.patches.lab_packages import LabHost, rpm, sh


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
