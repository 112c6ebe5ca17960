"""Rebooting a host after a patch, waiting for it to come back, and what "back" means: SSH
answers with the pinned host key, the host has really restarted, and the Docker engine that ran
before runs again with its containers.

**Has it restarted?** Before ``systemctl reboot`` the portal leaves a marker file in ``/run``,
which is a tmpfs on Photon (systemd mounts it at boot): the host is back when a login works
*and* the marker is gone. A login alone could be the host before it went down.

**The engine.** Checked over the same SSH login as hosts/changes does (``systemctl is-active
docker``, then ``docker ps``), not through the engine's TLS endpoint: a host may have none. A
container comes back by itself only under a restart policy (``always``, ``unless-stopped``);
those running before must run again. Others running before are listed, not failed: a reboot
stops them on any host, and that was the person's choice of policy.

Waiting polls a condition under a deadline; it never sleeps a fixed time.
"""

from __future__ import annotations

import asyncio
import secrets
import shlex
from dataclasses import dataclass

import asyncssh

from hosts import ssh

#: Restart policies under which dockerd starts a container again when it starts.
COMES_BACK = ("always", "unless-stopped")
REBOOT_COMMAND = "systemctl reboot"
REBOOT_TIMEOUT = 600.0
POLL_INTERVAL = 0.5

ENGINE_COMMAND = (
    'if [ "$(systemctl is-active docker 2>/dev/null)" = active ] && docker info >/dev/null 2>&1; then '
    "echo active; docker ps -q --no-trunc | xargs -r docker inspect "
    "--format '{{.Id}} {{.HostConfig.RestartPolicy.Name}} {{.Name}}'; else echo inactive; fi"
)


@dataclass(frozen=True)
class EngineState:
    active: bool
    #: Running containers: id -> (restart policy, name).
    running: dict[str, tuple[str, str]]

    def missing_after(self, after: EngineState) -> tuple[list[str], list[str]]:
        """(containers that should have come back and did not, those that could not come back)."""
        gone = [(cid, self.running[cid]) for cid in self.running if cid not in after.running]
        should = [name for _, (policy, name) in gone if policy in COMES_BACK]
        could_not = [name for _, (policy, name) in gone if policy not in COMES_BACK]
        return sorted(should), sorted(could_not)


def parse_engine(text: str) -> EngineState:
    lines = text.strip().splitlines()
    if not lines or lines[0].strip() != "active":
        return EngineState(False, {})
    running = {}
    for line in lines[1:]:
        cid, _, rest = line.strip().partition(" ")
        policy, _, name = rest.partition(" ")
        if cid:
            running[cid] = (policy, name.lstrip("/"))
    return EngineState(True, running)


async def engine_state(conn: asyncssh.SSHClientConnection) -> EngineState:
    result = await ssh.run(conn, ENGINE_COMMAND, timeout=60)
    return parse_engine(str(result.stdout or ""))


def marker_path() -> str:
    return f"/run/photon-portal-boot.{secrets.token_hex(8)}"


async def start_reboot(conn: asyncssh.SSHClientConnection, marker: str) -> str:
    """Leave ``marker`` and ask the host to reboot; "" when asked, else why not.

    The connection may drop while ``systemctl reboot`` runs: that is the reboot, not a failure."""
    made = await ssh.run(conn, f"touch {shlex.quote(marker)}", timeout=30)
    if made.exit_status != 0:
        return f"could not leave the boot marker in /run: {ssh.output(made)[-300:]}"
    try:
        result = await ssh.run(conn, f"{REBOOT_COMMAND} 2>&1", timeout=60)
    except ssh.HostUnreachable:
        return ""
    if result.exit_status not in (0, None):
        return f"`{REBOOT_COMMAND}` exited with {result.exit_status}: {ssh.output(result)[-300:]}"
    return ""


async def wait_for_return(
    access: ssh.Access, marker: str, *, engine: bool, timeout: float = REBOOT_TIMEOUT
) -> tuple[str, EngineState | None]:
    """Poll until the host answers with its pinned key, its marker is gone and (``engine``) the
    Docker engine is active again. ("", state) when back; (why not, last state) at the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last = "the host did not answer"
    state: EngineState | None = None
    while True:
        remaining = deadline - loop.time()
        try:
            async with ssh.connect(access, timeout=max(1.0, min(10.0, remaining))) as conn:
                present = await ssh.run(conn, f"test -e {shlex.quote(marker)}", timeout=30)
                if present.exit_status == 0:
                    last = "the host has not restarted yet (its boot marker is still in /run)"
                else:
                    state = await engine_state(conn)
                    if not engine or state.active:
                        return "", state
                    last = "the host is back but the Docker engine is not running"
        except ssh.KeyRefused as exc:
            return str(exc), state
        except ssh.SSHError as exc:
            last = str(exc)
        if loop.time() >= deadline:
            return f"{access.name} did not come back within {timeout:.0f}s: {last}", state
        await asyncio.sleep(POLL_INTERVAL)


async def wait_for_containers(
    access: ssh.Access, before: EngineState, *, timeout: float
) -> tuple[list[str], list[str]]:
    """Poll until every container that comes back by itself runs again, or the deadline; returns
    (those still missing, those that cannot come back: no restart policy)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        async with ssh.connect(access) as conn:
            after = await engine_state(conn)
        missing, could_not = before.missing_after(after)
        if not missing or loop.time() >= deadline:
            return missing, could_not
        await asyncio.sleep(POLL_INTERVAL)
