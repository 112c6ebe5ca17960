"""Fixtures for configuration changes: lab hosts of our own (changes are heavy), and
Host rows in a project that point at them."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.lab import common, photon_hosts
from tests.lab.fixtures import start

LabHost = dict[str, Any]


@pytest.fixture(scope="module")
def change_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[LabHost]]:
    """Three Photon-like hosts, the first running dockerd: ours to break and mend."""
    workdir = tmp_path_factory.mktemp("change-hosts")
    hosts = start(lambda: photon_hosts.up(workdir, hosts=3, full_hosts=1))
    for host in hosts:
        host["workdir"] = workdir
    yield hosts
    photon_hosts.down(workdir)


def set_link(lab: LabHost, up: bool) -> None:
    """Cut (or restore) a lab host's network from the machine's side: unreachable mid-run."""
    import subprocess

    state = {h.name: h for h in photon_hosts._load(Path(lab["workdir"]).resolve())}
    veth = state[str(lab["name"])].veth
    subprocess.run(["ip", "link", "set", veth, "up" if up else "down"], check=True)
    if up:
        host = state[str(lab["name"])]
        gateway = photon_hosts._gateway(host)
        # Taking the link down dropped its route: put it back as the lab made it.
        subprocess.run(
            ["ip", "route", "replace", f"{host.address}/32", "dev", veth, "src", gateway], check=True
        )


@pytest.fixture
def project(transactional_db: None):  # type: ignore[no-untyped-def]
    from portal.models import Project

    return Project.objects.create(name="fleet")


def host_for(lab: LabHost, project: Any, **fields: Any) -> Any:
    """The portal's Host for a lab SSH host, as registered with its key and host key pinned."""
    from hosts.models import Host

    values = {
        "project": project,
        "name": str(lab["name"]),
        "docker_url": f"tcp://{lab['address']}:2376",
        "address": str(lab["address"]),
        "ssh_port": int(lab["port"]),
        "ssh_user": str(lab["user"]),
        "ssh_private_key": Path(str(lab["private_key"])).read_text(),
        "ssh_host_key": str(lab["host_key"]),
        **fields,
    }
    return Host.objects.create(**values)


@pytest.fixture
def make_host(project):  # type: ignore[no-untyped-def]
    def make(lab: LabHost, **fields: Any) -> Any:
        return host_for(lab, project, **fields)

    return make


@pytest.fixture
def profiled_host(change_lab, make_host, make_user, project):  # type: ignore[no-untyped-def]
    """A lab host in the profile "tries" (sshd's MaxAuthTries 5), and a Provisioner, a
    Project admin and a Viewer of its project: (lab host, host, profile, people)."""
    from hosts.models.changes import Profile  # Django's models load after this module

    host = make_host(change_lab[1])
    profile = Profile.objects.create(project=project, name="tries", settings={"sshd": {"MaxAuthTries": 5}})
    profile.hosts.add(host)
    people = {
        "prov": make_user("prov", project=project, role="provisioner"),
        "pa": make_user("pa", project=project, role="project_admin"),
        "viewer": make_user("viewer", project=project, role="viewer"),
    }
    return change_lab[1], host, profile, people


def lab_run(
    lab: LabHost, command: str, *, port: int | None = None, user: str | None = None, check: bool = True
) -> str:
    """Run a command on a lab host as the test (not through the portal)."""
    import asyncssh

    async def go() -> str:
        trusted = asyncssh.import_public_key(str(lab["host_key"]))
        async with asyncssh.connect(
            str(lab["address"]),
            port=port or int(lab["port"]),
            username=user or str(lab["user"]),
            known_hosts=([trusted], [], []),
            client_keys=[str(lab["private_key"])],
            connect_timeout=10,
        ) as conn:
            result = await conn.run(command, check=check)
            return str(result.stdout or "")

    # In its own thread: Playwright's sync API keeps an event loop running in this one.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, go()).result()


def can_log_in(lab: LabHost, *, user: str = "root", port: int | None = None) -> bool:
    import asyncssh

    try:
        lab_run(lab, "true", user=user, port=port)
    except (asyncssh.PermissionDenied, asyncssh.DisconnectError, OSError):
        return False
    return True


def wait_runs(
    change: Any, done: Callable[[set[str]], bool] | None = None, timeout: float = 180
) -> dict[str, Any]:
    """Wait until no host of the change is queued or applying; return host name -> run."""
    from hosts.models import Change, ChangeRun

    busy = {"queued", "applying"}

    def finished() -> bool:
        states = set(ChangeRun.objects.filter(change=change).values_list("state", flat=True))
        status = Change.objects.get(pk=change.pk).status
        return not states & busy and status != "applying" and (done is None or done(states))

    common.wait_until(finished, timeout=timeout, what=f"{change} to finish")
    return {run.host.name: run for run in ChangeRun.objects.filter(change=change).select_related("host")}
