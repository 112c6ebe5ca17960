"""The lab hosts for the patch change lab tests: their packages read with rpm over SSH, a
command run there, and the portal's Host for one (the ``restored`` fixture is in conftest)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from hosts import ssh
from hosts.models import Host
from hosts.patches import installed
from hosts.patches.records import Nevra
from portal.models import Project

LabHost = dict[str, Any]
T = TypeVar("T")


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run``, in a thread of its own when this one has a loop running (a browser
    test: Playwright's sync API keeps one running in the test's thread)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def access(lab: LabHost) -> ssh.Access:
    key = Path(str(lab["private_key"])).read_text()
    return ssh.Access(
        str(lab["name"]), str(lab["address"]), int(lab["port"]), "root", key, str(lab["host_key"])
    )


def sh(lab: LabHost, command: str, timeout: float = 300) -> tuple[int, str]:
    async def run() -> tuple[int, str]:
        async with ssh.connect(access(lab)) as conn:
            result = await ssh.run(conn, command, timeout=timeout)
            return int(result.exit_status or 0), ssh.output(result)

    return _run(run())


def rpm(lab: LabHost) -> set[Nevra]:
    async def read() -> set[Nevra]:
        async with ssh.connect(access(lab)) as conn:
            return set((await installed.read_host(conn)).installed)

    return _run(read())


def host_for(lab: LabHost, project: Project) -> Host:
    """The portal's Host for a lab SSH host, its key and host key pinned (as registered)."""
    return Host.objects.create(
        project=project,
        name=str(lab["name"]),
        docker_url=f"tcp://{lab['address']}:2376",
        address=str(lab["address"]),
        ssh_port=int(lab["port"]),
        ssh_user=str(lab["user"]),
        ssh_private_key=Path(str(lab["private_key"])).read_text(),
        ssh_host_key=str(lab["host_key"]),
    )
