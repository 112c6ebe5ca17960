"""Fixtures for the hosts tests: the lab's TLS engine as a form would be filled in, hosts on it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hosts.fleet import endpoint as engine_endpoint
from hosts.fleet import trust as engine_trust
from hosts.models import Host
from portal.models import Project, Role


@pytest.fixture
def no_env_ca(monkeypatch: pytest.MonkeyPatch) -> None:
    """This machine sets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE; the portal must not need them unset,
    so they are set to the system bundle (which knows nothing of the lab's CA)."""
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.setenv(name, "/etc/ssl/certs/ca-certificates.crt")


@pytest.fixture
def tls_engine(lab_engines: list[dict[str, Any]]) -> dict[str, Any]:
    return next(e for e in lab_engines if e["tls"])


@pytest.fixture
def plain_engine(lab_engines: list[dict[str, Any]]) -> dict[str, Any]:
    return next(e for e in lab_engines if not e["tls"])


def pem(engine_info: dict[str, Any], which: str) -> str:
    return Path(engine_info["tls"][which]).read_text()


def form_data(engine_info: dict[str, Any], project: Project, **overrides: Any) -> dict[str, Any]:
    data = {
        "project": str(project.pk),
        "name": "photon-01",
        "docker_url": engine_info["url"],
        "tls_ca": pem(engine_info, "ca"),
        "tls_client_cert": pem(engine_info, "cert"),
        "tls_client_key": pem(engine_info, "key"),
        "tags_text": "prod, web",
        "ssh_port": "22",
        "ssh_user": "root",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def trusted_host(engine_info: dict[str, Any], project: Project, name: str = "photon-01") -> Host:
    """A host on a lab engine as the form would have saved it (TLS pinned, or insecure for a plain one)."""
    if engine_info["tls"]:
        trust = engine_trust.Trust(
            ca=pem(engine_info, "ca"),
            client_cert=pem(engine_info, "cert"),
            client_key=pem(engine_info, "key"),
        )
        fingerprint = engine_trust.peer_certificate(
            engine_endpoint.parse_endpoint(engine_info["url"]), trust
        ).fingerprint
        return Host.objects.create(
            project=project,
            name=name,
            docker_url=engine_info["url"],
            tls_ca=trust.ca,
            tls_client_cert=trust.client_cert,
            tls_client_key=trust.client_key,
            tls_fingerprint=fingerprint,
        )
    return Host.objects.create(project=project, name=name, docker_url=engine_info["url"], insecure=True)


@pytest.fixture
def project(db: None) -> Project:
    return Project.objects.create(name="Team A")


@pytest.fixture
def other_project(db: None) -> Project:
    return Project.objects.create(name="Team B")


@pytest.fixture
def people(make_user, project: Project) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return {
        "admin": make_user("root", admin=True),
        "manager": make_user("manager", project=project, role=Role.PROJECT_ADMIN),
        "provisioner": make_user("prov", project=project, role=Role.PROVISIONER),
        "viewer": make_user("viewer", project=project, role=Role.VIEWER),
        "outsider": make_user("outsider"),
    }
