"""Schemathesis against the API with the lab registered (issue 20): a Docker host with its
containers, a vCenter with its VMs, the lab's registries and the Harbor emulator, a profile
and a planned change, an application template, a provisioning quota and request. With
almost nothing registered (tests/test_api_schemathesis.py) most operations only ever answer
404; here they reach the peers, as an Admin (coverage, fuzzing and stateful phases), then as a
Provisioner and a Viewer of the project (coverage and fuzzing).

What Schemathesis may change is its own: a dockerd and a vcsim started for this test alone
(it stops and removes containers, deploys, powers VMs off, clones into the vCenter), torn
down afterwards. The lab's shared registries and Harbor are registered too: the API only
reads them (no operation of /api/registries/ writes), so they survive it as they were.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from hosts.models import AppTemplate, ProvisionQuota, ProvisionRequest, TemplateVersion, VCenter
from hosts.models.changes import Change, ChangeStatus, Profile
from hosts.vsphere import client as vsphere
from hosts.vsphere import sync as vsphere_sync
from portal import audit
from portal.api_auth import issue
from portal.events import notify
from portal.models import Project, Role
from registry.models import Registry
from tests.hosts.conftest import trusted_host
from tests.lab.fixtures import start
from tests.registry.conftest import registry_from
from tests.test_api_schemathesis import FIXED_SEED, schemathesis
from tests.vsphere.conftest import add_vcenter

pytestmark = pytest.mark.lab

TEMPLATE = "services:\n  web:\n    image: {image}\n    command: ['sleep', '3600']\n"


@pytest.fixture
def own_engine(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A TLS dockerd of this test's own, with the lab's images and containers."""
    from tests.lab import engines

    workdir = tmp_path / "engines"
    yield start(lambda: engines.up(workdir, plain=0, tls=1))[0]
    engines.down(workdir)


@pytest.fixture
def own_vcenter(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A small vcsim of this test's own: the shared one keeps the inventory the vSphere tests count on."""
    from tests.lab import vcenter

    workdir = tmp_path / "vcenter"
    yield start(lambda: vcenter.up(workdir, clusters=1, hosts=1, vms=8, photon_share=0.5))
    vcenter.down(workdir)


def register_lab(
    project: Project,
    engine: dict[str, Any],
    vcenter_info: dict[str, Any],
    registries: list[dict[str, Any]],
    harbor: dict[str, Any],
    admin: Any,
) -> None:
    """The lab's peers in the test database, as the other tests register them."""
    host = trusted_host(engine, project, "photon-lab")
    vcenter: VCenter = add_vcenter(vcenter_info)
    with vsphere.session(vcenter) as si:
        vsphere_sync.sync(vcenter, si)
    for info in registries:
        registry_from(info, projects=[project])
    registry_from(harbor, name="harbor", projects=[project])
    profile = Profile.objects.create(project=project, name="hardened", settings={"sshd": {"MaxAuthTries": 3}})
    profile.hosts.add(host)
    Change.objects.create(project=project, title="harden", profile=profile, status=ChangeStatus.PLANNED)
    template = AppTemplate.objects.create(project=project, name="shop")
    image = next(ref for ref in engine["images"] if ref.startswith("lab/busybox:"))
    TemplateVersion.objects.create(template=template, number=1, source=TEMPLATE.format(image=image))
    quota = ProvisionQuota.objects.create(project=project, max_vms=3, max_cpus=6, max_memory_mb=6144)
    quota.vcenters.add(vcenter)
    ProvisionRequest.objects.create(
        project=project, requester=admin, vcenter=vcenter, template="vm-1", name_pattern="lab-{n}"
    )
    audit.record("host.add", project=project, actor=admin, obj=host, after={"name": host.name})
    notify(f"{host.name} is OFF", severity="error", project=project)


def shared_repositories(admin: Any, settings: Any) -> dict[str, list[str]]:
    """What the lab's shared registries hold, read now (a cache namespace of its own: no
    answer remembered from before)."""
    settings.REGISTRY_CACHE_NAMESPACE = f"lab-check-{uuid.uuid4().hex[:12]}:"
    # Signed in without a token: Schemathesis's wrong tokens from this address (counted in Redis,
    # which this process shares with the daphne) would brake a token here (429).
    api = APIClient()
    api.force_authenticate(admin)
    found = {}
    for registry in Registry.objects.filter(kind=Registry.Kind.DISTRIBUTION).order_by("name"):
        response = api.get(f"/api/registries/{registry.pk}/repositories/", {"page_size": 500})
        assert response.status_code == 200, response.content
        found[registry.name] = [row["name"] for row in response.json()["results"]]
    return found


@pytest.mark.timeout(900)
def test_the_api_keeps_its_schema_with_the_lab_registered(
    daphne_factory: Any,
    make_user: Any,
    settings: Any,
    tmp_path: Path,
    own_engine: dict[str, Any],
    own_vcenter: dict[str, Any],
    lab_registries: list[dict[str, Any]],
    lab_harbor: dict[str, Any],
) -> None:
    project = Project.objects.create(name="lab")
    admin = make_user("root", admin=True)
    members = {
        role: make_user(role.value, project=project, role=role) for role in (Role.PROVISIONER, Role.VIEWER)
    }
    register_lab(project, own_engine, own_vcenter, lab_registries, lab_harbor, admin)
    # Another project beside it, with its own people and news: what the members ask of it is refused.
    other = Project.objects.create(name="other")
    make_user("other-admin", project=other, role=Role.PROJECT_ADMIN)
    notify("photon-other is OFF", severity="error", project=other)
    before = shared_repositories(admin, settings)
    assert before and all(before.values())
    _, token = issue(admin, "schemathesis")
    server = daphne_factory("daphne-schemathesis-lab", PORTAL_THROTTLE_API_TOKEN_FAILURES="100000/60")
    # Every failure in full (the assertion shows the end of st's output): tmp_path's schemathesis-report/.
    schemathesis(
        server.url,
        token,
        tmp_path,
        FIXED_SEED,
        phases="coverage,fuzzing,stateful",
        examples=5,
        options=("--report", "junit"),
    )
    # As a Provisioner and a Viewer of the project: what they may not do is a documented 403 or
    # 404 (never a 500), what they may is answered within the schema.
    for role, member in members.items():
        _, member_token = issue(member, f"schemathesis-{role.value}")
        (tmp_path / role.value).mkdir()
        schemathesis(
            server.url,
            member_token,
            tmp_path / role.value,
            FIXED_SEED,
            phases="coverage,fuzzing",
            examples=3,
            options=("--report", "junit"),
        )
    # The shared peers are as they were for the tests after this one.
    assert shared_repositories(admin, settings) == before
