"""A container's whole log downloaded as a file (issue 17), from a lab engine: every line, stdout
and stderr, each with its time; a Provisioner of the host's project only (a Viewer is refused,
another project's person finds nothing); each download audited, not its content; a container the
engine does not have is a 404."""

from __future__ import annotations

import uuid
from contextlib import closing

import pytest
from django.urls import reverse

from portal.models import AuditEntry, Role
from tests.hosts.conftest import trusted_host
from tests.lab import engines

pytestmark = pytest.mark.lab


@pytest.mark.timeout(120)
def test_a_provisioner_downloads_the_whole_log_a_viewer_cannot(
    client, people, project, other_project, make_user, tls_engine
) -> None:
    host = trusted_host(tls_engine, project, "photon-logs")
    busybox = next(ref for ref in tls_engine["images"] if ref.startswith("lab/busybox:"))
    name = f"logs-{uuid.uuid4().hex[:8]}"
    script = "for i in $(seq 1 3000); do echo line-$i; done; echo to-stderr >&2"
    with closing(engines.connect(tls_engine)) as sdk:
        container = sdk.containers.run(busybox, ["sh", "-c", script], name=name, detach=True)
        try:
            container.wait(timeout=60)  # exited: a stopped container's log is still there
            url = reverse("hosts:container_log", args=[host.pk, container.id])

            client.force_login(people["viewer"])
            assert client.get(url).status_code == 403
            client.force_login(make_user("stranger", project=other_project, role=Role.PROJECT_ADMIN))
            assert client.get(url).status_code == 404
            assert not AuditEntry.objects.filter(action="container.logs_download").exists()

            client.force_login(people["provisioner"])
            answer = client.get(url)
            assert answer.status_code == 200 and answer.streaming
            assert answer["Content-Disposition"] == f'attachment; filename="{name}-photon-logs.log"'
            lines = b"".join(answer.streaming_content).decode().splitlines()
            assert len(lines) == 3001
            # Each line with the engine's time first, then what the container printed.
            assert all(line.partition(" ")[0].endswith("Z") for line in lines), lines[:3]
            texts = [line.partition(" ")[2] for line in lines]
            assert [t for t in texts if t != "to-stderr"] == [f"line-{i}" for i in range(1, 3001)]
            assert "to-stderr" in texts  # stderr too (its place among the lines is the engine's)
            entry = AuditEntry.objects.get(action="container.logs_download")
            assert entry.actor == people["provisioner"] and entry.after == {
                "container": container.id[:12],
                "name": name,
            }
            page = client.get(reverse("hosts:container", args=[host.pk, container.id])).content.decode()
            assert 'id="logs-download"' in page

            assert client.get(reverse("hosts:container_log", args=[host.pk, "ab" * 32])).status_code == 404
            assert client.get(reverse("hosts:container_log", args=[host.pk, "not-hex"])).status_code == 404
        finally:
            container.remove(force=True)
