"""Fixtures for provisioning: the lab's vcsim added and synced, a project with a quota."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hosts.models import ProvisionQuota, VCenter, VirtualMachine
from hosts.vsphere import client as vsphere
from hosts.vsphere import sync as vsphere_sync
from portal.models import Project
from tests.lab import cloud_boot
from tests.lab.common import wait_until
from tests.lab.fixtures import start
from tests.vsphere.conftest import add_vcenter, find_vm, outside  # noqa: F401 -- fixtures reused

BASE_URL = "http://portal.test"


@pytest.fixture(scope="session")
def lab_vcenter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Provisioning clones VMs: a vcsim of its own, so the shared one keeps the inventory
    the vSphere tests count on."""
    from tests.lab import vcenter

    workdir = tmp_path_factory.mktemp("provision-vcenter")
    yield start(lambda: vcenter.up(workdir, vms=100, photon_share=0.3))
    vcenter.down(workdir)


@pytest.fixture
def project(db: None) -> Project:
    project = Project.objects.create(name="fleet")
    ProvisionQuota.objects.create(project=project, max_vms=5, max_cpus=10, max_memory_mb=10240)
    return project


@pytest.fixture
def synced_vc(db: None, lab_vcenter: dict[str, Any], project: Project) -> VCenter:
    """The lab's vCenter, synced, and one ``project`` may clone in."""
    vcenter = add_vcenter(lab_vcenter)
    with vsphere.session(vcenter) as si:
        vsphere_sync.sync(vcenter, si)
    project.provision_quota.vcenters.add(vcenter)
    return vcenter


def _listed(vm: VirtualMachine) -> VirtualMachine:
    """Issue 12: only vSphere templates, or VMs an Admin lists on a project's quota, may be
    cloned. The lab's VMs are not marked as templates: list ``vm`` on every quota of its vCenter."""
    for quota in ProvisionQuota.objects.filter(vcenters=vm.vcenter_id):
        quota.templates.add(vm)
    return vm


def photon_template(vcenter: VCenter) -> VirtualMachine:
    return _listed(
        VirtualMachine.objects.filter(vcenter=vcenter, is_photon=True, gone=False).order_by("name").first()  # type: ignore[arg-type]
    )


def other_template(vcenter: VCenter) -> VirtualMachine:
    return _listed(
        VirtualMachine.objects.filter(vcenter=vcenter, is_photon=False, gone=False).order_by("name").first()  # type: ignore[arg-type]
    )


@pytest.fixture
def boot_host(lab_root: Path) -> Iterator[dict[str, Any]]:
    workdir = lab_root / "cloud-boot"
    yield start(lambda: cloud_boot.up(workdir))
    cloud_boot.down(workdir)


@pytest.fixture
def portal_on_lab_network(
    daphne_factory: Any, boot_host: dict[str, Any], celery_worker_if_brokered: None
) -> str:
    """A real daphne on the test database, listening where the lab hosts can reach it
    (with a broker, the worker takes the tasks it queues)."""
    address = boot_host["gateway"]
    return str(daphne_factory("portal", bind=address, PORTAL_ALLOWED_HOSTS=address).url)


def wait_enrolled(pvm: Any, booted: dict[str, Any]) -> None:
    """Wait for ``pvm``'s phone-home; on a timeout, say what the portal and the boot saw."""
    from hosts.models import ProvisionedVm
    from portal.models import Event

    def enrolled() -> bool:
        pvm.refresh_from_db()
        return pvm.state == ProvisionedVm.State.ENROLLED

    try:
        wait_until(enrolled, timeout=60, what="the host to enroll")
    except TimeoutError:
        events = list(Event.objects.values_list("message", flat=True))
        raise AssertionError(f"{pvm.state} {pvm.detail} {events}\n{booted['log'][-6000:]}") from None


def assert_reachable(host: Any, boot_host: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """The enrolled host as the portal uses it: SSH with the pinned key, Docker over TLS."""
    import asyncio

    from hosts import ssh
    from hosts.fleet import engine

    assert host.address == boot_host["address"]
    assert host.docker_url == f"tcp://{boot_host['address']}:2376"
    # SSH with the key cloud-init made and the host sent, pinned at enrollment.
    assert asyncio.run(ssh.login_works(ssh.Access.of(host))) == ""
    assert host.ssh_host_key != boot_host["host_key"]  # cloud-init made new host keys
    # Docker over TLS: the portal's client certificate and the pinned server certificate.
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    client = wait_until(lambda: engine.client_for(host), timeout=30, what="dockerd on 2376 with TLS")
    assert client.version()["ApiVersion"]  # type: ignore[union-attr]


# --- screens without the lab: rows made directly -----------------------------------------------


@pytest.fixture
def vc_row(db: None) -> VCenter:
    """A vCenter row nobody connects to (the form's placement read is stubbed: ``no_placement``)."""
    return VCenter.objects.create(name="vc-a", url="https://vc-a.test", username="u", password="p")


@pytest.fixture
def no_placement(monkeypatch: pytest.MonkeyPatch) -> None:
    """The request form reads a vCenter's placement live: here it has nothing to offer."""
    from hosts.vsphere import placement

    monkeypatch.setattr(placement, "for_vcenter", lambda vcenter: placement.Placement())


def vm_row(
    vcenter: VCenter, name: str, *, photon: bool = True, template: bool = True, **fields: Any
) -> VirtualMachine:
    """A synced VM: a Photon OS template unless told otherwise."""
    from hosts.models.vsphere import PHOTON_GUEST_ID

    return VirtualMachine.objects.create(
        vcenter=vcenter,
        moref=f"vm-{name}",
        name=name,
        guest_id=PHOTON_GUEST_ID if photon else "windows2019srv_64Guest",
        is_photon=photon,
        is_template=template,
        **fields,
    )
