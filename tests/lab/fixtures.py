"""Pytest fixtures for the lab's peers: session-scoped, started lazily, one lab per run.

Registered for the whole suite (tests/conftest.py), so any integration test asks
for the peer it needs (``lab_engines``, ``lab_registries``, ``lab_harbor``,
``lab_vcenter``, ``lab_hosts``, ``lab_smtp``, ``lab_webhooks``, ``lab_slapd``, ``lab_rpm``,
``lab_oidc``) and only those start. Where the lab cannot run
(not root, a missing package) a test skips with the reason, except with
``PORTAL_REQUIRE_LAB=1`` (CI), where it fails.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import pytest

from tests.lab import common

T = TypeVar("T")


def unavailable(exc: BaseException) -> NoReturn:
    if os.environ.get("PORTAL_REQUIRE_LAB") == "1":
        pytest.fail(f"lab required (PORTAL_REQUIRE_LAB=1) but unavailable: {exc}")
    pytest.skip(f"lab unavailable: {exc}")


def start(up: Callable[[], T]) -> T:
    try:
        return up()
    except common.LabUnavailable as exc:
        unavailable(exc)


@pytest.fixture(scope="session")
def lab_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("lab")


@pytest.fixture(scope="session")
def lab_engines(lab_root: Path) -> Iterator[list[dict[str, Any]]]:
    """One plain and one TLS dockerd, with images and containers (tests.lab.engines)."""
    from tests.lab import engines

    workdir = lab_root / "engines"
    yield start(lambda: engines.up(workdir, plain=1, tls=1))
    engines.down(workdir)


@pytest.fixture(scope="session")
def lab_registries(lab_root: Path) -> Iterator[list[dict[str, Any]]]:
    """Anonymous, Basic and token registries, seeded (tests.lab.registries, tests.lab.seed)."""
    from tests.lab import registries

    workdir = lab_root / "registries"
    yield start(lambda: registries.up(workdir))
    registries.down(workdir)


@pytest.fixture(scope="session")
def lab_harbor(lab_root: Path) -> Iterator[dict[str, Any]]:
    """The Harbor API emulator in front of its own seeded registry (tests.lab.harbor)."""
    from tests.lab import harbor

    workdir = lab_root / "harbor"
    yield start(lambda: harbor.up(workdir))
    harbor.down(workdir)


@pytest.fixture(scope="session")
def lab_hosts(lab_root: Path) -> Iterator[list[dict[str, Any]]]:
    """Two Photon-like SSH hosts, the first running dockerd inside (tests.lab.photon_hosts).

    Tests that change a host put it back as they found it: the hosts are shared.
    """
    from tests.lab import photon_hosts

    workdir = lab_root / "hosts"
    yield start(lambda: photon_hosts.up(workdir, hosts=2, full_hosts=1))
    photon_hosts.down(workdir)


@pytest.fixture(scope="session")
def lab_vcenter(lab_root: Path) -> Iterator[dict[str, Any]]:
    """vcsim with 100 VMs, 30 of them Photon guests (tests.lab.vcenter)."""
    from tests.lab import vcenter

    workdir = lab_root / "vcenter"
    yield start(lambda: vcenter.up(workdir, vms=100, photon_share=0.3))
    vcenter.down(workdir)


@pytest.fixture(scope="session")
def lab_smtp(lab_root: Path) -> Iterator[dict[str, Any]]:
    """A real SMTP server (aiosmtpd) keeping what it receives (tests.lab.smtp)."""
    from tests.lab import smtp

    workdir = lab_root / "smtp"
    yield start(lambda: smtp.up(workdir))
    smtp.down(workdir)


@pytest.fixture(scope="session")
def lab_webhooks(lab_root: Path) -> Iterator[dict[str, Any]]:
    """A webhook receiver that checks signatures and fails on demand (tests.lab.webhook_receiver)."""
    from tests.lab import webhook_receiver

    workdir = lab_root / "webhooks"
    yield start(lambda: webhook_receiver.up(workdir))
    webhook_receiver.down(workdir)


@pytest.fixture(scope="session")
def lab_slapd(lab_root: Path) -> Iterator[dict[str, Any]]:
    """OpenLDAP's slapd with StartTLS and LDAPS from a lab CA, seeded (tests.lab.slapd).

    Tests that change the directory (group members) put it back as they found it."""
    from tests.lab import slapd

    workdir = lab_root / "slapd"
    yield start(lambda: slapd.up(workdir))
    slapd.down(workdir)


@pytest.fixture(scope="session")
def lab_rpm(lab_root: Path, lab_hosts: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Demo RPMs in base and updates repositories served to the hosts, each host with its own
    RPM database and .repo files (tests.lab.rpm_repos).

    Tests that change a host's packages put them back as they found them: the hosts are shared."""
    from tests.lab import rpm_repos

    workdir = lab_root / "rpm"
    yield start(lambda: rpm_repos.up(workdir, lab_hosts))
    rpm_repos.down(workdir)


@pytest.fixture(scope="session")
def lab_oidc(lab_root: Path) -> Iterator[dict[str, Any]]:
    """An OpenID Connect provider (django-oauth-toolkit) over HTTPS from a lab CA, with
    seeded people and groups and the portal's client (tests.lab.oidc)."""
    from tests.lab import oidc

    workdir = lab_root / "oidc"
    yield start(lambda: oidc.up(workdir))
    oidc.down(workdir)
