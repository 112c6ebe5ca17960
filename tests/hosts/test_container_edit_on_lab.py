"""Edit and recreate a container on a lab engine (issue 17): the environment and the published ports
changed through the form, the container made again with them and everything else as it was
(compared from ``docker inspect`` before and after); an environment its command fails with makes the new
one exit at once, and the old one is back as it was. The audit names the keys, never the values; the
broker carries the values encrypted only. A Viewer may not; bad lines change nothing."""

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
from tests.hosts.test_recreate_on_lab import outcome_of
from tests.lab import engines
from tests.lab.common import free_port

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.lab]


def _edit(client: Any, host_pk: int, container_id: str, environment: str, ports: str) -> dict[str, Any]:
    """Post the form, then wait for the task's outcome in the audit trail."""
    url = reverse("hosts:container_edit", args=[host_pk, container_id])
    answer = client.post(url, {"environment": environment, "ports": ports})
    assert answer.status_code == 302, answer.content.decode()[:2000]
    return outcome_of(container_id)


@pytest.mark.timeout(240)
def test_edit_the_environment_and_ports_and_a_failing_edit_puts_the_old_one_back(
    client, people, project, tls_engine, celery_worker_if_brokered
) -> None:
    host = trusted_host(tls_engine, project, "photon-edit")
    busybox = next(ref for ref in tls_engine["images"] if ref.startswith("lab/busybox:"))
    name, port, moved = f"edit-{uuid.uuid4().hex[:8]}", free_port(), free_port()
    with closing(engines.connect(tls_engine)) as sdk:
        api = sdk.api
        try:
            made = api.create_container(
                busybox,
                ["sh", "-c", 'test "$MODE" != broken && exec sleep 3600'],
                name=name,
                environment={"A": "1", "TOKEN": "s3cret", "MODE": "ok"},
                labels={"team": "a"},
                ports=[80],
                host_config=api.create_host_config(
                    port_bindings={80: ("127.0.0.1", port)}, restart_policy={"Name": "unless-stopped"}
                ),
            )
            api.start(made["Id"])
            before = api.inspect_container(made["Id"])
            url = reverse("hosts:container_edit", args=[host.pk, made["Id"]])

            client.force_login(people["viewer"])
            assert client.get(url).status_code == 403
            client.force_login(people["provisioner"])
            page = client.get(url).content.decode()
            assert "TOKEN=s3cret" in page and f"127.0.0.1:{port}:80" in page  # what it has now
            page = client.post(url, {"environment": "not a line", "ports": "70000:80"}).content.decode()
            assert "Line 1 is not KEY=value." in page and "is not [IP:]HOST:CONTAINER" in page
            assert not AuditEntry.objects.filter(action="container.recreate").exists()

            outcome = _edit(
                client,
                host.pk,
                made["Id"],
                "A=2\nTOKEN=n3w\nB=3\nMODE=ok",
                f"127.0.0.1:{moved}:80\n9000:90/udp",
            )
            assert outcome["outcome"] == "ok", outcome
            after = api.inspect_container(name)
            assert after["Id"] != before["Id"] and after["State"]["Running"]
            env = set(after["Config"]["Env"])
            assert {"A=2", "TOKEN=n3w", "B=3"} <= env and "A=1" not in env
            assert after["HostConfig"]["PortBindings"] == {
                "80/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(moved)}],
                "90/udp": [{"HostIp": "", "HostPort": "9000"}],
            }
            for field in ("Cmd", "Image", "Labels", "WorkingDir"):
                assert after["Config"][field] == before["Config"][field], field
            assert after["HostConfig"]["RestartPolicy"] == before["HostConfig"]["RestartPolicy"]
            request = AuditEntry.objects.get(action="container.recreate")
            assert request.after["env_keys"] == ["A", "B", "MODE", "TOKEN"] and "n3w" not in str(
                request.after
            )

            # An environment the command cannot run with: the new one exits at once, the edited one
            # is back as it was. (The lab's engines publish no ports, so a port conflict cannot fail.)
            failed = _edit(client, host.pk, after["Id"], "A=3\nMODE=broken", f"127.0.0.1:{port}:80")
            assert failed["outcome"] != "ok" and failed["new"] == "", failed
            assert "exited at once" in failed["outcome"]
            back = api.inspect_container(name)
            assert back["Id"] == after["Id"] and back["State"]["Running"]
            assert (
                "A=2" in back["Config"]["Env"]
                and back["HostConfig"]["PortBindings"] == after["HostConfig"]["PortBindings"]
            )
            assert not sdk.containers.list(all=True, filters={"name": f"{name}-old-"})
        finally:
            for found in sdk.containers.list(all=True, filters={"name": name}):
                with contextlib.suppress(docker.errors.APIError):
                    found.remove(force=True)
