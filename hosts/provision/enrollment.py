"""One-time enrollment: a new host proves who it is with the token its guestinfo
carried, and the portal pins the SSH host keys it sends and registers it.

The token is random (256 bits), kept only as its SHA-256, used once, expires, and
is bound to one VM (its cloud-init instance-id must come back with it). Anything
else, a replay, an expired or unknown token, a key another host already has, is
refused and written to the event log, because it is either a broken host or
someone probing the one URL the portal serves to anonymous callers.
"""

from __future__ import annotations

from collections.abc import Mapping

import asyncssh
from django.db import IntegrityError, transaction
from django.utils import timezone

from hosts import ca as portal_ca
from hosts.models import Host, ProvisionedVm
from hosts.provision import guest_address, tasks, tokens
from hosts.provision.vm_state import set_state
from portal import audit, events, queueing
from portal.models import Event

KEY_FIELDS = ("pub_key_ed25519", "pub_key_ecdsa", "pub_key_rsa")
DOCKER_TLS_PORT = 2376


class EnrollmentRefused(Exception):
    pass


def _key_line(text: str) -> str:
    """``type base64`` of an OpenSSH public key line, without its comment; "" if it is no key."""
    parts = text.strip().split()
    if len(parts) < 2 or len(text) > 16384:
        return ""
    line = f"{parts[0]} {parts[1]}"
    try:
        asyncssh.import_public_key(line)
    except (asyncssh.KeyImportError, ValueError):
        return ""
    return line


def _refuse(reason: str, *, pvm: ProvisionedVm | None, address: str) -> EnrollmentRefused:
    # One event per source address (and VM) per window, counting repeats: the URL is
    # anonymous, and a flood of refused posts must not become a flood of rows.
    where = f" from {address}" if address else ""
    key = f"enroll-refused:{address}:{pvm.pk if pvm is not None else '-'}"
    if pvm is not None:
        events.notify_repeated(
            key,
            f"Enrollment of {pvm.name} refused{where}: {reason}",
            severity=Event.Severity.WARNING,
            obj=pvm,
            project=pvm.request.project_id,
        )
    else:
        events.notify_repeated(key, f"Enrollment refused{where}: {reason}", severity=Event.Severity.WARNING)
    return EnrollmentRefused(reason)


def enroll(token: str, posted: Mapping[str, str], address: str) -> Host:
    """Register the host that phoned home with ``token``; raise EnrollmentRefused otherwise.

    ``address`` is the connection's peer (never a forwarded header); the host is
    registered at the address it reports only once vCenter confirms it (hosts.provision.guest_address).
    """
    pvm = (
        ProvisionedVm.objects.select_related("request__project")
        .filter(token_hash=tokens.hash_token(token))
        .first()
    )
    if pvm is None:
        raise _refuse("unknown enrollment token", pvm=None, address=address)
    if pvm.token_used is not None:
        raise _refuse("the enrollment token was already used (replay)", pvm=pvm, address=address)
    if pvm.state == ProvisionedVm.State.CANCELLED:
        raise _refuse("its provisioning was cancelled", pvm=pvm, address=address)
    if pvm.token_expires <= timezone.now():
        raise _refuse("the enrollment token has expired", pvm=pvm, address=address)
    if posted.get("instance_id", "").strip() != pvm.instance_id:
        raise _refuse("the token was issued for another VM (instance-id differs)", pvm=pvm, address=address)
    keys = [line for line in (_key_line(posted.get(f, "")) for f in KEY_FIELDS) if line]
    if not keys:
        raise _refuse("no SSH host key was sent", pvm=pvm, address=address)
    for key in keys:
        if Host.objects.filter(ssh_host_key__startswith=key).exists():
            raise _refuse("an SSH host key it sent belongs to another host", pvm=pvm, address=address)
    if not address and not posted.get("address", "").strip():
        raise _refuse("no address to reach the host at", pvm=pvm, address=address)
    try:
        address = guest_address.confirm(pvm, posted.get("address", ""), address)
    except guest_address.NotConfirmed as exc:
        raise _refuse(str(exc), pvm=pvm, address=address) from None
    try:
        host = _register(pvm, address, keys[0])
    except IntegrityError:
        raise _refuse(
            f"a host named {pvm.name} exists in the project already", pvm=pvm, address=address
        ) from None
    if host is None:
        raise _refuse("the enrollment token was already used (replay)", pvm=pvm, address=address)
    pvm.refresh_from_db()
    set_state(pvm, ProvisionedVm.State.ENROLLED, f"Enrolled from {address}.", host=host)
    events.notify(
        f"{host.name} enrolled from {address}", obj=host, project=host.project_id, kind="provision.done"
    )
    return host


def _register(pvm: ProvisionedVm, address: str, host_key: str) -> Host | None:
    """The Host, registered with what enrollment pins and the credentials made for this VM
    alone when it was seeded (moved from the VM's row, not copied); None if the token was
    used meanwhile."""
    with transaction.atomic():
        # Single use even under concurrent posts: only one update finds it unused; and
        # none once it is cancelled, however late the cancel came (services.cancel_vm).
        claimed = (
            ProvisionedVm.objects.filter(pk=pvm.pk, token_used__isnull=True)
            .exclude(state=ProvisionedVm.State.CANCELLED)
            .update(token_used=timezone.now())
        )
        if not claimed:
            return None
        seeded = ProvisionedVm.objects.select_for_update().get(pk=pvm.pk)
        if not (seeded.client_ca_cert and seeded.client_ca_key and seeded.ssh_private_key):
            raise EnrollmentRefused("the VM was seeded without its own credentials")
        client_ca = portal_ca.ClientCa(cert=seeded.client_ca_cert, key=str(seeded.client_ca_key))
        client = portal_ca.issue_client(client_ca, pvm.name)
        host = Host.objects.create(
            project=pvm.request.project,
            name=pvm.name,
            docker_url=f"tcp://{address}:{DOCKER_TLS_PORT}",
            # The server is verified against the portal CA; the host's dockerd trusts only client_ca.
            tls_ca=portal_ca.authority().cert,
            tls_fingerprint=pvm.tls_fingerprint,
            tls_client_cert=client.cert,
            tls_client_key=client.key,
            client_ca_cert=client_ca.cert,
            client_ca_key=client_ca.key,
            address=address,
            ssh_user="root",
            ssh_private_key=str(seeded.ssh_private_key),
            ssh_key_issued=True,
            ssh_host_key=host_key,
            enrolled=True,
        )
        seeded.client_ca_key, seeded.ssh_private_key = "", ""
        seeded.save(update_fields=["client_ca_key", "ssh_private_key"])
        audit.record(
            "host.enroll",
            obj=host,
            project=pvm.request.project,
            actor_name="enrollment",
            after={"address": address, "ssh_host_key": host_key, "vm": pvm.name},
        )
        _clear_guestinfo_after(pvm)
    return host


def _clear_guestinfo_after(pvm: ProvisionedVm) -> None:
    """Once the enrollment is saved, the clone's guestinfo no longer needs the secrets it carried.

    Marked first, in the enrollment's transaction: with the broker down the host is still
    enrolled (its token is spent, so failing its phone-home would strand it), and the sweep
    (hosts.provision.flow.clear_left_guestinfo) clears what the task could not."""
    if pvm.moref:
        ProvisionedVm.objects.filter(pk=pvm.pk).update(guestinfo_to_clear=True)
        queueing.enqueue_or_leave(tasks.clear_guestinfo_task, pvm.pk)
