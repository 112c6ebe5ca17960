"""Recreating a container on a lab engine (issue 17): a newer image pushed under the same tag to the
lab registry; the portal pulls it and makes the container again, its configuration compared field
by field from ``docker inspect`` before and after, its anonymous volume's data kept; then an image
that cannot run pushed under that tag: the new container fails, the old one is back as it was.
Through the confirmation page and the Celery task, as a Provisioner does it."""

from __future__ import annotations

import contextlib
import uuid
from contextlib import closing
from typing import Any

import docker.errors
import pytest
from django.urls import reverse

from portal.models import AuditEntry
from tests.hosts.conftest import trusted_host
from tests.lab import engines
from tests.lab.common import free_port, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.lab]


def _push(sdk: Any, base: str, image: str, change: list[str], script: str = "true") -> None:
    """A new image made from ``base`` (``script`` run in it, Dockerfile ``change`` applied),
    pushed as ``image`` (repository:tag)."""
    made = sdk.containers.create(base, ["sh", "-c", script])
    try:
        made.start()
        made.wait(timeout=60)
        repository, tag = image.rsplit(":", 1)
        made.commit(repository=repository, tag=tag, changes=change)
    finally:
        made.remove(force=True)
    repository, tag = image.rsplit(":", 1)
    for line in sdk.api.push(repository, tag=tag, stream=True, decode=True):
        assert "error" not in line, line


def _recreate(client: Any, host_pk: int, container_id: str) -> dict[str, Any]:
    """Confirm, then wait for the task's outcome in the audit trail."""
    url = reverse("hosts:container_recreate", args=[host_pk, container_id])
    assert 'id="confirm-recreate"' in client.get(url).content.decode()
    client.post(url)
    return outcome_of(container_id)


def outcome_of(container_id: str) -> dict[str, Any]:
    """The recreate's outcome once its task has put it in the audit trail."""
    results = AuditEntry.objects.filter(
        action="container.recreate_result", after__container=container_id[:12]
    )
    wait_until(results.exists, timeout=90, what="the recreate's outcome")
    return dict(results.get().after)


@pytest.mark.timeout(240)
def test_recreate_pulls_the_newer_image_keeps_the_configuration_and_rolls_back_a_failing_one(
    client, people, project, tls_engine, lab_registries, celery_worker_if_brokered
) -> None:
    host = trusted_host(tls_engine, project, "photon-recreate")
    registry = next(r for r in lab_registries if r["name"] == "anonymous")["url"].split("://", 1)[1]
    busybox = next(ref for ref in tls_engine["images"] if ref.startswith("lab/busybox:"))
    tag = uuid.uuid4().hex[:8]
    image, name, port = f"{registry}/scratch/portal-rec{tag}:1", f"rec-{tag}", free_port()
    networks, volume = [f"front-{tag}", f"back-{tag}"], f"data-{tag}"
    client.force_login(people["provisioner"])
    with closing(engines.connect(tls_engine)) as sdk:
        try:
            _push(sdk, busybox, image, ["LABEL release=1"])
            for network in networks:
                sdk.api.create_network(network)
            api = sdk.api
            made = api.create_container(
                image,
                ["sleep", "3600"],
                name=name,
                environment={"A": "1", "TOKEN": "s3cret"},
                labels={"team": "a"},
                volumes=["/anon", "/data"],
                ports=[80],
                host_config=api.create_host_config(
                    binds={volume: {"bind": "/data", "mode": "rw"}},
                    port_bindings={80: ("127.0.0.1", port)},
                    restart_policy={"Name": "unless-stopped"},
                    network_mode=networks[0],
                ),
                networking_config=api.create_networking_config(
                    {networks[0]: api.create_endpoint_config(aliases=["api"])}
                ),
            )
            api.connect_container_to_network(made["Id"], networks[1], aliases=["worker"])
            api.start(made["Id"])
            run = api.exec_create(made["Id"], ["sh", "-c", "echo keep > /anon/f"])
            api.exec_start(run["Id"])
            before = api.inspect_container(made["Id"])

            # A Viewer may not; a forged id is no container.
            client.force_login(people["viewer"])
            assert (
                client.post(reverse("hosts:container_recreate", args=[host.pk, made["Id"]])).status_code
                == 403
            )
            client.force_login(people["provisioner"])
            assert (
                client.get(reverse("hosts:container_recreate", args=[host.pk, "zz" * 32])).status_code == 404
            )
            assert (
                client.get(reverse("hosts:container_recreate", args=[host.pk, "ab" * 32])).status_code == 404
            )
            assert not AuditEntry.objects.filter(action="container.recreate").exists()

            # A newer image under the same tag: pulled, and the container made again from it.
            _push(sdk, busybox, image, ["LABEL release=2"])
            outcome = _recreate(client, host.pk, before["Id"])
            assert outcome["outcome"] == "ok"
            after = api.inspect_container(name)
            assert after["Id"] != before["Id"] and after["Id"][:12] == outcome["new"]
            assert api.inspect_image(after["Image"])["Config"]["Labels"]["release"] == "2"
            assert after["State"]["Running"]
            for field in (
                "Env",
                "Cmd",
                "Entrypoint",
                "Image",
                "ExposedPorts",
                "WorkingDir",
                "User",
                "Volumes",
            ):
                assert after["Config"][field] == before["Config"][field], field
            labels = {k: v for k, v in after["Config"]["Labels"].items() if k != "release"}
            assert labels == {k: v for k, v in before["Config"]["Labels"].items() if k != "release"}
            for field in ("Binds", "PortBindings", "RestartPolicy", "NetworkMode", "Memory", "Privileged"):
                assert after["HostConfig"][field] == before["HostConfig"][field], field
            nets = after["NetworkSettings"]["Networks"]
            assert sorted(nets) == sorted(before["NetworkSettings"]["Networks"]) == sorted(networks)
            assert "api" in nets[networks[0]]["Aliases"] and "worker" in nets[networks[1]]["Aliases"]
            run = api.exec_create(after["Id"], ["cat", "/anon/f"])
            assert api.exec_start(run["Id"]).strip() == b"keep"  # the anonymous volume came along
            assert not sdk.containers.list(all=True, filters={"name": f"{name}-old-"})

            # An image that cannot run the container's command: the old one is back as it was.
            _push(sdk, busybox, image, ["LABEL release=3"], script="rm /bin/sleep")
            failed = _recreate(client, host.pk, after["Id"])
            assert failed["outcome"] != "ok" and failed["new"] == "", failed
            back = api.inspect_container(name)
            assert back["Id"] == after["Id"] and back["State"]["Running"]
            assert not sdk.containers.list(all=True, filters={"name": f"{name}-old-"})
            assert (
                AuditEntry.objects.filter(action="container.recreate", actor=people["provisioner"]).count()
                == 2
            )
        finally:
            for found in sdk.containers.list(all=True, filters={"name": name}):
                found.remove(force=True, v=True)
            for network in networks:
                with contextlib.suppress(docker.errors.APIError):
                    sdk.api.remove_network(network)
            with contextlib.suppress(docker.errors.APIError):
                sdk.api.remove_volume(volume)
            for found in sdk.images.list(name=image.rsplit(":", 1)[0]):
                with contextlib.suppress(docker.errors.APIError):
                    sdk.images.remove(found.id, force=True)
