"""Point 1 of issue 12: existing hosts are re-keyed by a change (plan, approve, apply).

In the lab, a Photon-like host with the portal's Docker TLS gets a new root SSH key and a
new Docker client CA through the change flow: afterwards the old key and the old client
certificate are refused in a real handshake, the new ones work, and the engine answers
throughout. When the host refuses the new key (sshd's RevokedKeys), or still takes the old
one (a second authorized_keys file), the files are put back and the Host keeps its old
credentials. ``manage.py rotate_credentials`` says how it went in one line and its exit
code; a Viewer, or a Provisioner of another project, rotates nothing."""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from hosts import ssh
from hosts.changes import approval as change_approval
from hosts.changes import errors, planning, revert, rotation
from hosts.fleet import engine
from hosts.fleet import tasks as host_tasks
from hosts.fleet import trust as engine_trust
from hosts.models import Change, ChangeRun, Host
from portal.models import AuditEntry, Project, Role
from tests.changes.conftest import change_lab, lab_run, make_host, project, wait_runs  # noqa: F401
from tests.lab.common import wait_until

CREDENTIALS = (
    "ssh_private_key",
    "ssh_key_issued",
    "tls_client_cert",
    "tls_client_key",
    "client_ca_cert",
    "client_ca_key",
)


def creds(host: Host) -> dict[str, str]:
    host.refresh_from_db()
    return {name: str(getattr(host, name)) for name in CREDENTIALS}


def login(host: Host, private_key: str) -> str:
    """A real SSH login to ``host`` with ``private_key``: "" when it works, else why not."""
    access = ssh.Access(host.name, host.address, host.ssh_port, host.ssh_user, private_key, host.ssh_host_key)
    return asyncio.run(ssh.login_works(access))


def docker_tls_host(lab: dict[str, Any], make_host: Any, admin: Any, project: Project) -> Host:  # noqa: F811
    """A lab host given the portal's Docker TLS change, checked ON by the status check."""
    host = make_host(lab, docker_url=f"ssh://root@{lab['address']}")
    change = Change.objects.create(
        project=project, title="tls", settings={"docker_api": {"enabled": True}}, created_by=admin
    )
    planning.plan(change, [host])
    change_approval.start_apply(change, admin)
    run = wait_runs(change)[host.name]
    assert run.state == "applied", f"{run.reason}\n{run.log}"
    host.refresh_from_db()
    assert host.docker_url.endswith(":2376")
    assert host_tasks.check_host.run(host.pk) == "ok"
    return host


@pytest.fixture
def no_ca_bundle(monkeypatch: pytest.MonkeyPatch) -> None:
    # The environment's CA bundles must not stand in for the portal's CA (lab notes).
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)


@pytest.mark.lab
def test_a_host_that_refuses_the_new_key_keeps_its_old_credentials(
    change_lab,  # noqa: F811
    make_host,  # noqa: F811
    make_user,
    project,  # noqa: F811
    celery_worker_if_brokered,
    no_ca_bundle,
    client,
) -> None:
    lab = change_lab[0]
    admin = make_user("pa", project=project, role=Role.PROJECT_ADMIN)
    host = docker_tls_host(lab, make_host, admin, project)
    before = creds(host)
    keys_before = lab_run(lab, "cat /root/.ssh/authorized_keys")
    ca_before = lab_run(lab, "cat /etc/docker/portal-tls/ca.pem")

    # The Project admin's "Rotate credentials" on the host's page: a change, planned, shown.
    client.force_login(admin)
    page = client.get(reverse("hosts:host", args=[host.pk]))
    assert b'id="rotate-credentials"' in page.content
    response = client.post(reverse("hosts:rotate", args=[host.pk]))
    change = Change.objects.get(project=project, title__startswith="Rotate credentials")
    assert response.status_code == 302 and response["Location"] == reverse("hosts:change", args=[change.pk])
    wait_until(lambda: Change.objects.get(pk=change.pk).status == "planned", timeout=60, what="the plan")
    run = ChangeRun.objects.get(change=change)
    new_line = re.search(r"^\+(ssh-ed25519 \S+ photon-portal@\S+)$", run.files[0]["diff"], re.M)
    assert new_line, run.files[0]["diff"]

    # This host's sshd refuses the new key: its administrator revoked it (RevokedKeys).
    lab_run(lab, f"echo '{new_line[1]}' > /etc/ssh/revoked_keys")
    lab_run(lab, "echo 'RevokedKeys /etc/ssh/revoked_keys' >> /etc/ssh/sshd_config && systemctl restart sshd")
    try:
        response = client.post(reverse("hosts:change_apply", args=[change.pk]), {"confirm": "yes"})
        assert response.status_code == 302
        run = wait_runs(change)[host.name]
    finally:
        lab_run(lab, "sed -i '/^RevokedKeys/d' /etc/ssh/sshd_config && systemctl restart sshd")
    assert run.state == "rolled_back", f"{run.reason}\n{run.log}"
    assert "the new SSH key does not log in" in run.reason

    # Nothing half-written: the files are the originals, the Host row is as it was...
    assert lab_run(lab, "cat /root/.ssh/authorized_keys") == keys_before
    assert lab_run(lab, "cat /etc/docker/portal-tls/ca.pem") == ca_before
    assert creds(host) == before
    assert str(ChangeRun.objects.get(pk=run.pk).credentials)  # kept to apply again, encrypted
    assert not AuditEntry.objects.filter(action="host.credentials_rotated").exists()
    # ...and the old credentials work: an SSH login, and dockerd (restarted) over TLS.
    assert login(host, before["ssh_private_key"]) == ""
    wait_until(lambda: engine.handshake_error(host.docker_url, engine_trust.Trust.of(host)) == "", timeout=30,
               what="dockerd to answer the old client certificate again")  # fmt: skip
    assert host_tasks.check_host.run(host.pk) == "ok"


@pytest.mark.lab
def test_rotate_credentials_command_rekeys_a_docker_tls_host_and_old_ones_are_refused(
    change_lab,  # noqa: F811
    make_host,  # noqa: F811
    make_user,
    project,  # noqa: F811
    celery_worker_if_brokered,
    no_ca_bundle,
) -> None:
    lab, neighbour = change_lab[0], change_lab[1]
    admin = make_user("pa", project=project, role=Role.PROJECT_ADMIN)
    host = docker_tls_host(lab, make_host, admin, project)
    other = make_host(neighbour)
    old = creds(host)
    old_trust = engine_trust.Trust.of(host)
    with contextlib.closing(engine.client_for(host)) as sdk:
        assert sdk.info()["Name"] == lab["name"]

    out = io.StringIO()
    call_command("rotate_credentials", host.name, "--user", "pa", "--apply", stdout=out)
    line = out.getvalue().strip()
    change = Change.objects.get(title__startswith="Rotate credentials")
    assert line == f"rotation change(s) {change.pk} (applied): rotated; 1 host(s): 1 applied", line
    run = ChangeRun.objects.get(change=change)
    assert run.state == "applied", f"{run.reason}\n{run.log}"
    # The plan the approver read: the portal's line replaced in authorized_keys, a new client CA.
    keys, ca = run.files
    assert keys["path"] == "/root/.ssh/authorized_keys" and ca["path"] == "/etc/docker/portal-tls/ca.pem"
    old_public = Path(str(lab["private_key"])).with_suffix(".pub").read_text().split()[1]
    assert f"-ssh-ed25519 {old_public}" in keys["diff"] and "+ssh-ed25519 " in keys["diff"]
    assert "-----BEGIN CERTIFICATE-----" in ca["diff"] and run.restarts == ["docker"]
    assert "PRIVATE KEY" not in str(run.files)
    assert str(run.credentials) == ""  # the new keys live on the Host alone now

    new = creds(host)
    assert new["ssh_key_issued"] == "True"
    for name in ("ssh_private_key", "tls_client_cert", "tls_client_key", "client_ca_cert", "client_ca_key"):
        assert new[name] and new[name] != old[name], name

    # Real handshakes: the old SSH key is refused by this host's sshd, the new one logs in;
    # the neighbour, not rotated, still takes the lab's key (a refusal, not an outage).
    assert "was refused" in login(host, old["ssh_private_key"])
    assert login(host, new["ssh_private_key"]) == ""
    assert login(other, old["ssh_private_key"]) == ""
    # dockerd refuses the old client certificate and answers the new one.
    assert engine.handshake_error(host.docker_url, old_trust)
    with contextlib.closing(engine.client_for(host)) as sdk:
        assert sdk.info()["Name"] == lab["name"]
    assert host_tasks.check_host.run(host.pk) == "ok"
    assert Host.objects.get(pk=host.pk).status == "on"

    # One audit entry per host, with fingerprints, never a secret.
    (entry,) = AuditEntry.objects.filter(action="host.credentials_rotated")
    assert entry.object_id == str(host.pk) and entry.actor == admin
    assert entry.after["ssh_key"].startswith("SHA256:") and "client_ca" in entry.after
    assert "PRIVATE KEY" not in str(entry.after) and "BEGIN" not in str(entry.after)
    # A rotation is not undone (that would put the old key back).
    with pytest.raises(errors.ChangeError, match="not undone"):
        revert.start_revert(change, admin)


@pytest.mark.lab
def test_the_command_fails_and_rolls_back_when_the_old_key_still_logs_in(
    change_lab,  # noqa: F811
    make_host,  # noqa: F811
    make_user,
    project,  # noqa: F811
    celery_worker_if_brokered,
) -> None:
    lab = change_lab[2]
    make_user("pa", project=project, role=Role.PROJECT_ADMIN)
    host = make_host(lab)
    before = creds(host)
    # The portal's key is authorized twice: sshd reads a second file the rotation does not own.
    lab_run(lab, "cp /root/.ssh/authorized_keys /root/.ssh/authorized_keys2")
    lab_run(
        lab,
        "sed -i 's|^#\\?AuthorizedKeysFile.*|AuthorizedKeysFile .ssh/authorized_keys .ssh/authorized_keys2|'"
        " /etc/ssh/sshd_config && systemctl restart sshd",
    )
    keys_before = lab_run(lab, "cat /root/.ssh/authorized_keys")
    out = io.StringIO()
    try:
        with pytest.raises(SystemExit) as failed:
            call_command("rotate_credentials", "--all", "--user", "pa", "--apply", stdout=out)
    finally:
        lab_run(lab, "rm -f /root/.ssh/authorized_keys2")
    assert failed.value.code == 1
    change = Change.objects.get(title__startswith="Rotate credentials")
    assert out.getvalue().strip() == (
        f"rotation change(s) {change.pk} (failed): not rotated everywhere; 1 host(s): 1 rolled back"
    )
    run = ChangeRun.objects.get(change=change)
    assert "the old SSH key still logs in" in run.reason, run.log
    assert lab_run(lab, "cat /root/.ssh/authorized_keys") == keys_before
    assert creds(host) == before
    assert login(host, before["ssh_private_key"]) == ""


@pytest.mark.django_db
def test_a_viewer_or_another_projects_provisioner_rotates_nothing(make_user, client) -> None:
    mine, theirs = Project.objects.create(name="mine"), Project.objects.create(name="theirs")
    host = Host.objects.create(project=mine, name="web-1", docker_url="tcp://10.9.9.9:2376")
    make_user("viewer", project=mine, role=Role.VIEWER)
    make_user("stranger", project=theirs, role=Role.PROVISIONER)
    make_user("prov", project=mine, role=Role.PROVISIONER)

    for name, status in (("viewer", 403), ("stranger", 404)):
        client.force_login(_user(name))
        assert client.post(reverse("hosts:rotate", args=[host.pk])).status_code == status
        page = client.get(reverse("hosts:host", args=[host.pk]))
        assert b'id="rotate-credentials"' not in page.content
        with pytest.raises(CommandError) as refused:
            call_command("rotate_credentials", "web-1", "--user", name)
        assert refused.value.returncode == 2 and "may rotate" in str(refused.value)
        with pytest.raises(errors.ChangeError):
            rotation.start([host], _user(name))
    assert not Change.objects.exists()
    # --all as the stranger covers their own project only: no host there, nothing created.
    with pytest.raises(CommandError):
        call_command("rotate_credentials", "--all", "--user", "stranger")
    assert not Change.objects.exists()

    # A Provisioner of the project may plan it. Its one host has no SSH access set, so the
    # plan refuses it and ends there, saying so (issue 14): nothing waits for an approval.
    out = io.StringIO()
    with pytest.raises(SystemExit) as ended:
        call_command("rotate_credentials", "web-1", "--user", "prov", "--apply", stdout=out)
    assert ended.value.code == 1
    change = Change.objects.get()
    assert change.created_by == _user("prov") and change.status == "failed"
    assert "1 refused" in out.getvalue()
    assert not AuditEntry.objects.filter(action="host.credentials_rotated").exists()


def _user(name: str) -> Any:
    from django.contrib.auth import get_user_model

    return get_user_model().objects.get(username=name)
