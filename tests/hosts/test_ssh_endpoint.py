"""ssh://user@host Docker endpoints: Verify shows the host's SSH key, only a confirmed key is pinned,
and every connection refuses any other key (the docker SDK's SSH transport, not its known_hosts)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from django.urls import reverse

from hosts.fleet import endpoint as engine_endpoint
from hosts.fleet import engine, engine_ssh
from hosts.models import Host, HostStatus
from portal.models import AuditEntry, Project

pytestmark = pytest.mark.django_db


@pytest.fixture
def photon(lab_hosts: list[dict[str, Any]]) -> dict[str, Any]:
    """The lab's full Photon host: dockerd on its unix socket, root login by key."""
    return next(h for h in lab_hosts if h["full"])


def ssh_form(photon: dict[str, Any], project: Project, **overrides: Any) -> dict[str, Any]:
    data = {
        "project": str(project.pk),
        "name": "photon-ssh",
        "docker_url": f"ssh://root@{photon['address']}",
        "ssh_private_key": Path(photon["private_key"]).read_text(),
        "ssh_port": "22",
        "ssh_user": "root",
        "tags_text": "ssh",
    }
    data.update(overrides)
    return data


def stranger_key_line() -> str:
    public = ed25519.Ed25519PrivateKey.generate().public_key()
    return public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


def test_add_an_ssh_host_with_verify_and_host_key_confirmation(client, people, project, photon) -> None:
    client.force_login(people["manager"])
    verify = client.post(reverse("hosts:verify"), ssh_form(photon, project)).content.decode()
    assert "Docker 20.10" in verify, verify
    expected = engine_ssh.HostKey.of(engine_ssh.parse_host_key(photon["host_key"])).fingerprint
    assert f'id="presented-host-key">{expected}<' in verify
    presented = verify.split('name="ssh_host_key" value="', 1)[1].split('"', 1)[0]
    assert not Host.objects.exists()  # Verify saves nothing

    unconfirmed = client.post(reverse("hosts:add"), ssh_form(photon, project, ssh_host_key=presented))
    assert "Confirm that you trust this SSH host key" in unconfirmed.content.decode()
    assert not Host.objects.exists()

    response = client.post(
        reverse("hosts:add"), ssh_form(photon, project, ssh_host_key=presented, trust_host_key="on")
    )
    host = Host.objects.get()
    assert response.status_code == 302
    assert engine_ssh.parse_host_key(host.ssh_host_key) == engine_ssh.parse_host_key(photon["host_key"])
    assert host.status == HostStatus.ON and host.engine_version and not host.tls_fingerprint
    assert host.address == photon["address"]  # configuration over SSH goes to the same pinned host
    assert AuditEntry.objects.filter(action="host.add", object_id=str(host.pk)).exists()

    page = client.get(reverse("hosts:host", args=[host.pk])).content.decode()
    assert "engine-error" not in page and 'id="engine-objects"' in page
    # Its images, volumes and networks, asked of the engine over SSH too (the page's htmx section).
    section = client.get(reverse("hosts:engine_objects", args=[host.pk])).content.decode()
    assert "engine-objects-error" not in section and 'id="image-rows"' in section and ">none<" in section
    edit = client.get(reverse("hosts:edit", args=[host.pk])).content.decode()
    assert "PRIVATE KEY" not in edit


def test_a_key_other_than_the_pinned_one_is_refused(people, project, photon) -> None:
    host = Host.objects.create(
        project=project,
        name="photon-ssh",
        docker_url=f"ssh://root@{photon['address']}",
        ssh_private_key=Path(photon["private_key"]).read_text(),
        ssh_host_key=stranger_key_line(),
    )
    with pytest.raises(engine_endpoint.EngineError, match="other than the pinned one"):
        engine.client_for(host, timeout=5)

    host.ssh_host_key = photon["host_key"]
    sdk = engine.client_for(host, timeout=5)
    try:
        assert engine.read_facts(sdk).engine_version.startswith("20.10")
    finally:
        sdk.close()


def test_saving_with_a_key_the_host_does_not_present_saves_nothing(client, people, project, photon) -> None:
    client.force_login(people["manager"])
    response = client.post(
        reverse("hosts:add"),
        ssh_form(photon, project, ssh_host_key=stranger_key_line(), trust_host_key="on"),
    )
    assert "different SSH key" in response.content.decode()
    assert not Host.objects.exists()


def test_an_ssh_endpoint_needs_a_private_key(client, people, project, photon) -> None:
    client.force_login(people["manager"])
    response = client.post(reverse("hosts:add"), ssh_form(photon, project, ssh_private_key=""))
    assert "An ssh:// endpoint logs in with this key" in response.content.decode()
    assert not Host.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(120)
def test_the_watcher_checks_and_streams_events_over_ssh(project, photon) -> None:
    import io
    import tarfile

    from tests.hosts.watching import running_watcher
    from tests.lab.common import wait_until

    host = Host.objects.create(
        project=project,
        name="photon-ssh",
        docker_url=f"ssh://root@{photon['address']}",
        ssh_private_key=Path(photon["private_key"]).read_text(),
        ssh_host_key=photon["host_key"],
    )
    sdk = engine.client_for(host, timeout=5)
    try:
        listeners = sdk.info()["NEventsListener"]
        # Checks only at start: what follows reaches the portal through the event stream alone.
        with running_watcher(interval=300.0):
            wait_until(lambda: Host.objects.get(pk=host.pk).status == HostStatus.ON, timeout=30, what="ON")
            wait_until(lambda: sdk.info()["NEventsListener"] > listeners, timeout=20, what="the event stream")
            total = Host.objects.get(pk=host.pk).containers_total
            layer = io.BytesIO()
            with tarfile.open(fileobj=layer, mode="w") as tar:
                data = b"probe\n"
                info = tarfile.TarInfo("probe.txt")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            sdk.api.import_image_from_data(layer.getvalue(), repository="lab/ssh-probe", tag="1")
            created = sdk.api.create_container("lab/ssh-probe:1", command="/probe.txt", name="ssh-probe")
            wait_until(
                lambda: Host.objects.get(pk=host.pk).containers_total == total + 1,
                timeout=20,
                what="the created container counted",
            )
            sdk.api.remove_container(created["Id"], force=True)
            wait_until(
                lambda: Host.objects.get(pk=host.pk).containers_total == total,
                timeout=20,
                what="the removed container uncounted",
            )
    finally:
        with contextlib.suppress(Exception):
            sdk.api.remove_container("ssh-probe", force=True)
        with contextlib.suppress(Exception):
            sdk.api.remove_image("lab/ssh-probe:1", force=True)
        sdk.close()
