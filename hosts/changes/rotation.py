"""Credential rotation: re-key a host as a configuration change (plan, approve, apply).

Hosts registered before per-host credentials trust the portal's old shared client CA
and root SSH key; rotating gives each a key and a client CA of its own. The change
replaces the portal's line in the SSH user's ``authorized_keys`` and, where the portal
set up Docker TLS, dockerd's client CA (``ca.pem`` of the drop-in). The new keys are
made when the change is planned, so the approver reads the real new public halves in
the diff; their private halves wait on the run, encrypted, until the host holds them.

Applying is the change flow's own (hosts.changes.apply: backups, temporary files, restart,
rollback); only verifying differs: the NEW key must log in and the new client
certificate be accepted by dockerd over TLS, and the OLD key and certificate must be
refused. Only then does the Host row take the new credentials, in the run's closing
transaction; any failure restores the files and leaves the Host as it was.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import asyncssh
from django.db.models import QuerySet

from hosts import ca as portal_ca
from hosts import ssh, ssh_keys
from hosts.changes import desired, errors, render
from hosts.changes import files as change_files
from hosts.changes.files import docker
from hosts.fleet import engine
from hosts.fleet import trust as engine_trust
from hosts.models import Host
from hosts.models.changes import Change, ChangeRun, RunState
from portal import access, audit

#: Seconds for dockerd, restarted with the new client CA, to answer the new certificate.
DOCKER_WAIT = 30.0


@dataclass(frozen=True)
class RotationInput:
    """One host to plan, read from the database before SSH is touched."""

    host_id: int
    access: ssh.Access
    #: The host's Docker API is TLS with a client certificate: its dockerd's client CA is rotated too.
    docker_tls: bool


@dataclass(frozen=True)
class Pending:
    """What applying one host's rotation needs: the new credentials and the old ones to refuse."""

    credentials: dict[str, str] = field(repr=False)
    docker_tls: bool
    docker_url: str
    old_trust: engine_trust.Trust


def start(hosts: Iterable[Host], user: Any) -> Change:
    """A new change that rotates the credentials of ``hosts`` (one project's), to be planned.

    Raises ChangeError, creating nothing, when the user may not plan changes there."""
    hosts = list(hosts)
    if not hosts:
        raise errors.ChangeError("no host to rotate")
    projects = {h.project_id for h in hosts}
    if len(projects) != 1:
        raise errors.ChangeError("a rotation covers the hosts of one project")
    project = hosts[0].project
    if not access.can(user, "change.plan", project.pk):
        raise errors.ChangeError(f"{user} may not plan changes in {project}")
    names = ", ".join(h.name for h in hosts[:5]) + (f" and {len(hosts) - 5} more" if len(hosts) > 5 else "")
    return Change.objects.create(
        project=project,
        title=f"Rotate credentials of {names}"[:200],
        settings={desired.ROTATE: {"ssh": True, "docker": True}},
        created_by=user,
    )


def rotatable(user: Any, project_ids: Iterable[int] | None = None) -> QuerySet[Host]:
    """The hosts whose credentials ``user`` may rotate (plan a change for)."""
    hosts = Host.objects.filter(project__in=access.projects(user, "change.plan"))
    if project_ids is not None:
        hosts = hosts.filter(project_id__in=list(project_ids))
    return hosts.select_related("project").order_by("project__name", "project_id", "name")


def _docker_tls(host: Host) -> bool:
    return host.docker_url.startswith("tcp://") and not host.insecure and bool(host.tls_client_cert)


def inputs(hosts: Iterable[Host]) -> list[RotationInput]:
    return [RotationInput(h.pk, ssh.Access.of(h), _docker_tls(h)) for h in hosts]


# ---------------------------------------------------------------- plan


def _public_line(private_key: str) -> tuple[str, str]:
    """(type, base64) of a private key's public half, whatever format it is stored in."""
    algorithm, blob, *_ = (
        asyncssh.import_private_key(private_key).export_public_key("openssh").decode().split()
    )
    return algorithm, blob


def replace_key(text: str, old: tuple[str, str], new_line: str) -> tuple[str, int]:
    """``authorized_keys`` with every line of the ``old`` key now ``new_line`` (its options,
    such as ``from=``, kept), and how many lines were replaced; other keys stay as they are."""
    needle = f"{old[0]} {old[1]}"
    lines = text.splitlines(keepends=True)
    count = 0
    for i, line in enumerate(lines):
        stripped = line.strip()
        at = stripped.find(needle)
        before = stripped[at - 1 : at] if at > 0 else " "
        after = stripped[at + len(needle) : at + len(needle) + 1]
        if stripped.startswith("#") or at < 0 or before not in (" ", "\t") or after not in ("", " ", "\t"):
            continue
        lines[i] = stripped[:at] + new_line + "\n"
        count += 1
    return "".join(lines), count


async def plan_one(item: RotationInput) -> render.HostPlan:
    """Read the host's authorized_keys (and dockerd's client CA); make the new keys; diff."""
    HostPlan = render.HostPlan
    try:
        old = _public_line(item.access.private_key)
    except (asyncssh.KeyImportError, ValueError) as exc:
        return HostPlan(state=RunState.REFUSED, reason=f"the stored SSH key cannot be read ({exc})")
    try:
        async with ssh.connect(item.access) as conn, ssh.sftp_client(conn) as sftp:
            home = str((await ssh.run(conn, 'printf %s "$HOME"', timeout=30)).stdout or "")
            if not home.startswith("/") or "\n" in home:
                return HostPlan(state=RunState.REFUSED, reason=f"{item.access.user} has no home directory")
            keys_path = f"{home.rstrip('/')}/.ssh/authorized_keys"
            paths = [keys_path, *((docker.CA, docker.DROP_IN) if item.docker_tls else ())]
            files = await ssh.read_files(sftp, paths)
    except ssh.SSHError as exc:
        return HostPlan(state=RunState.UNREACHABLE, reason=str(exc))
    new_key = await asyncio.to_thread(ssh_keys.new_ssh_key, item.access.name)
    try:
        current = render.file_text(files[keys_path]) if files[keys_path].exists else ""
        rewritten, count = replace_key(current, old, new_key.public)
        if not count:
            return HostPlan(
                state=RunState.REFUSED,
                reason=f"the portal's key is not in {keys_path}, so it cannot be replaced there; "
                "re-key this host by hand",
            )
        entries = [render.file_entry(files[keys_path], rewritten)]
        credentials = {"ssh_private_key": new_key.private}
        plan = HostPlan(restarts=[])
        ca_file = files.get(docker.CA)
        drop_in = files.get(docker.DROP_IN)
        if item.docker_tls and ca_file and ca_file.exists and drop_in and drop_in.exists:
            client_ca = await asyncio.to_thread(portal_ca.new_client_ca, item.access.name)
            client = await asyncio.to_thread(portal_ca.issue_client, client_ca, item.access.name)
            entries.append(render.file_entry(ca_file, client_ca.cert))
            credentials.update(
                client_ca_cert=client_ca.cert,
                client_ca_key=client_ca.key,
                tls_client_cert=client.cert,
                tls_client_key=client.key,
            )
            plan.restarts = ["docker"]
            plan.checks.rotate_docker = True
        elif item.docker_tls:
            plan.reason = (
                "Docker's TLS was not set up by the portal here: its client certificate is left alone"
            )
    except change_files.SettingsError as exc:
        return HostPlan(state=RunState.REFUSED, reason=str(exc))
    plan.files = entries
    plan.credentials = json.dumps(credentials)
    return plan


# ---------------------------------------------------------------- apply


def pending(run: ChangeRun) -> Pending | None:
    """The rotation ``run`` applies (None: the run is not a rotation's). Called in runs.claim."""
    if not desired.is_rotation(run.change):
        return None
    stored = str(run.credentials or "")
    return Pending(
        credentials=json.loads(stored) if stored else {},
        docker_tls=run.rotate_docker,
        docker_url=run.host.docker_url,
        old_trust=engine_trust.Trust.of(run.host),
    )


async def _refused(old: ssh.Access) -> bool:
    """True when the host answers and refuses ``old``'s key; False when it still logs in."""
    try:
        async with ssh.connect(old):
            return False
    except ssh.KeyRefused:
        return True
    except ssh.SSHError as exc:
        raise errors.StepFailed("verifying", f"could not check that the old key is refused: {exc}") from None


def _check_docker(item: Pending) -> None:
    """The new client certificate is accepted (dockerd may still be starting), then the old one refused."""
    new = dataclasses.replace(
        item.old_trust,
        client_cert=item.credentials["tls_client_cert"],
        client_key=item.credentials["tls_client_key"],
    )
    last = ""
    until = time.monotonic() + DOCKER_WAIT
    while time.monotonic() < until:
        last = engine.handshake_error(item.docker_url, new)
        if not last:
            break
        time.sleep(0.5)
    if last:
        raise errors.StepFailed("verifying", f"Docker did not accept the new client certificate: {last}")
    if not engine.handshake_error(item.docker_url, item.old_trust):
        raise errors.StepFailed("verifying", "Docker still accepts the old client certificate")


async def verify(old: ssh.Access, item: Pending, report: Callable[..., Any]) -> dict[str, Any]:
    """New credentials work and old ones are refused; returns the Host fields to save."""
    if not item.credentials:
        raise errors.StepFailed("verifying", "this run holds no new credentials: plan the rotation again")
    new = dataclasses.replace(old, private_key=item.credentials["ssh_private_key"])
    problem = await ssh.login_works(new)
    if problem:
        raise errors.StepFailed("verifying", f"the new SSH key does not log in: {problem}")
    await report("verifying", 87, "the new SSH key logs in")
    if not await _refused(old):
        raise errors.StepFailed(
            "verifying", "the old SSH key still logs in (is it authorized in another file too?)"
        )
    await report("verifying", 89, "the old SSH key is refused")
    fields: dict[str, Any] = {"ssh_private_key": new.private_key, "ssh_key_issued": True}
    if item.docker_tls:
        await asyncio.to_thread(_check_docker, item)
        await report("verifying", 95, "Docker accepts the new client certificate and refuses the old one")
        fields.update(
            {
                k: item.credentials[k]
                for k in ("tls_client_cert", "tls_client_key", "client_ca_cert", "client_ca_key")
            }
        )
    return fields


def record(run: ChangeRun) -> None:
    """The audit entry of one host re-keyed: fingerprints of the new public halves, never a secret."""
    host = Host.objects.select_related("project").get(pk=run.host_id)  # as just saved
    after: dict[str, Any] = {
        "change": run.change_id,
        "ssh_key": asyncssh.import_private_key(str(host.ssh_private_key)).get_fingerprint(),
    }
    if run.rotate_docker:
        after["client_ca"] = portal_ca.fingerprint(host.client_ca_cert)
        after["client_cert"] = portal_ca.fingerprint(host.tls_client_cert)
    audit.record(
        "host.credentials_rotated", obj=host, project=host.project, actor=run.change.applied_by, after=after
    )
