"""Verifying an applied change from the portal's side: a new SSH login, the ports the
firewall should open or close, the kernel's values, Docker's TLS endpoint."""

from __future__ import annotations

import asyncio
import contextlib
import shlex
import socket
import time
from collections.abc import Callable
from typing import Any

from channels.db import database_sync_to_async

from hosts import ca as portal_ca
from hosts import ssh
from hosts.changes import reloads, rotation
from hosts.changes.errors import StepFailed
from hosts.changes.files import docker
from hosts.changes.runs import Context
from hosts.fleet import engine
from hosts.fleet import trust as engine_trust

#: Seconds to wait for a port to answer (or not) from outside the host.
PORT_CHECK_TIMEOUT = 3.0
#: Seconds a reloaded sshd may take to listen again (it executes itself anew).
SSHD_RELOAD_LISTEN = 10.0


def listener_wait(restarts: list[str]) -> float:
    """How long a new login may wait for sshd to listen again after these restarts."""
    return SSHD_RELOAD_LISTEN if reloads.reload_entry("sshd") in restarts else 0.0


def port_answers(address: str, port: int, timeout: float = PORT_CHECK_TIMEOUT) -> bool:
    """From outside the host: does the firewall let tcp/``port`` through? A refusal
    (nothing listening) counts as through; only a dropped packet (timeout) does not."""
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except ConnectionRefusedError:
        return True
    except OSError:
        return False


async def verify_run(context: Context, report: Callable[..., Any]) -> dict[str, Any] | None:
    if context.rotation is not None:
        return await rotation.verify(context.access, context.rotation, report)
    access = context.access
    new_port = context.checks.ssh_port
    if new_port:
        access = ssh.Access(
            access.name, access.address, int(new_port), access.user, access.private_key, access.host_key
        )
    problem = await ssh.login_works(access, wait_for_listener=listener_wait(context.restarts))
    if problem:
        raise StepFailed("verifying", f"a new SSH login failed: {problem}")
    await report("verifying", 88, f"a new SSH login on port {access.port} works")
    if context.checks.sysctl:
        await _verify_sysctl(access, dict(context.checks.sysctl), report)
    for proto, port in context.checks.open:
        if proto == "tcp":
            if not await asyncio.to_thread(port_answers, access.address, int(port)):
                raise StepFailed("verifying", f"tcp/{port} is still closed as seen from the portal")
            await report("verifying", 90, f"tcp/{port} is open as seen from the portal")
    for proto, port in context.checks.closed:
        if proto == "tcp":
            if await asyncio.to_thread(port_answers, access.address, int(port)):
                raise StepFailed("verifying", f"tcp/{port} is still open as seen from the portal")
            await report("verifying", 92, f"tcp/{port} is closed as seen from the portal")
    endpoint = None
    if context.checks.docker_tls and not context.reverting:
        if context.client_ca is None:
            raise StepFailed("verifying", "no client CA was issued for this host in this run")
        # Reads the portal's CA: through channels' wrapper, which gives the thread's
        # connection back to the pool (a thread that ends holding one keeps its slot).
        endpoint = await database_sync_to_async(_docker_tls_endpoint, thread_sensitive=False)(
            access.address,
            context.server_cert,
            context.client_ca,
            access.name,
        )
        await report(
            "verifying", 95, f"Docker answers on {endpoint['docker_url']} to the portal's certificate"
        )
    if context.reverting and context.endpoint_restore is not None:
        endpoint = context.endpoint_restore
    if new_port:
        endpoint = {**(endpoint or {}), "ssh_port": int(new_port)}
    return endpoint


async def _verify_sysctl(access: ssh.Access, wanted: dict[str, str], report: Callable[..., Any]) -> None:
    """The kernel's values now, read back: ``sysctl -p`` exits 0 on some values it did not take."""
    async with ssh.connect(access) as conn:
        result = await ssh.run(conn, "sysctl -n " + " ".join(shlex.quote(k) for k in wanted), timeout=30)
    got = str(result.stdout or "").splitlines()
    wrong = []
    for i, (key, value) in enumerate(wanted.items()):
        now = " ".join(got[i].split()) if i < len(got) else ""
        if now != " ".join(value.split()):
            wrong.append(f"{key} is {now or 'unreadable'}, not {value}")
    if wrong:
        raise StepFailed("verifying", "; ".join(wrong))
    await report("verifying", 89, f"{len(wanted)} kernel parameter(s) read back as set")


def _docker_tls_endpoint(
    address: str, server_cert: str, client_ca: portal_ca.ClientCa, host_name: str
) -> dict[str, Any]:
    """The Host fields for the TLS endpoint, after proving it answers the client certificate
    issued for this host alone (by ``client_ca``, the only client CA its dockerd trusts)."""
    client = portal_ca.issue_client(client_ca, host_name)
    server_ca = portal_ca.authority().cert
    host = address if ":" not in address else f"[{address}]"
    docker_url = f"tcp://{host}:{docker.TLS_PORT}"
    fingerprint = portal_ca.fingerprint(server_cert)
    fields = {
        "docker_url": docker_url,
        "tls_ca": server_ca,
        "tls_fingerprint": fingerprint,
        "tls_client_cert": client.cert,
        "tls_client_key": client.key,
        "client_ca_cert": client_ca.cert,
        "client_ca_key": client_ca.key,
        "insecure": False,
    }
    trust = engine_trust.Trust(
        ca=server_ca, client_cert=client.cert, client_key=client.key, fingerprint=fingerprint
    )
    last = ""
    until = time.monotonic() + 30
    while time.monotonic() < until:
        try:
            with contextlib.closing(engine.connect(docker_url, trust, timeout=5)) as sdk:
                sdk.version()
                return fields
        except Exception as exc:  # noqa: BLE001 - every failure is "not yet", reported at the end
            last = engine.describe_error(exc, docker_url)
        time.sleep(0.5)
    raise StepFailed("verifying", f"Docker did not answer over TLS: {last}")
