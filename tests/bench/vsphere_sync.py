"""How fast the portal reads a vCenter: `python -m tests.bench.vsphere_sync --vms 2000`.

In one run, against one lab vcsim of ``--vms`` VMs:

- ``sync_s``: a full sync into an empty database (read, upsert, link), the median of
  ``--runs``; ``resync_s``: the same when nothing changed;
- ``baseline_s``: the same properties fetched (and decoded) by a small Go program on
  Debian's govmomi, as govc would, the median of as many runs, each run right after a
  sync and resync; ``ratio`` = sync / baseline;
- ``watch_p95_ms``: from asking vCenter to change a VM's power state to the websocket
  message in a browser session of a real daphne running the watchers (``--changes`` of them).

The last line is ``key=value`` pairs; exits non-zero if it could not measure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.lab import common, vcenter

SOURCE = Path(__file__).with_name("govmomi_baseline") / "main.go"


def build_baseline() -> Path:
    return common.build_go(SOURCE, "govmomi_baseline")


def baseline(info: dict[str, Any], runs: int) -> dict[str, Any]:
    result = subprocess.run(
        [
            str(build_baseline()),
            f"-url={info['url']}",
            f"-user={info['user']}",
            f"-password={info['password']}",
            f"-ca={info['ca_certificate']}",
            f"-runs={runs}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"govmomi baseline failed: {result.stderr.strip()}")
    return json.loads(result.stdout)


def setup_django(database: Path) -> None:
    """A fresh database from the models (as the tests make theirs), unless DATABASE_URL says otherwise."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    if not os.environ.get("DATABASE_URL"):
        os.environ["PORTAL_SQLITE_PATH"] = str(database)
    import django
    from django.conf import settings

    django.setup()
    settings.MIGRATION_MODULES = {app.split(".")[-1]: None for app in settings.INSTALLED_APPS}
    from django.core.management import call_command

    call_command("migrate", run_syncdb=True, verbosity=0)


def measure_sync(info: dict[str, Any], runs: int, between: Callable[[], None]) -> dict[str, Any]:
    """Times full syncs and resyncs; ``between`` runs after each pair (the baseline's turn,
    so both see the same machine: a load that comes and goes would otherwise skew the ratio)."""
    from hosts.models import Cluster, Datacenter, Datastore, EsxHost, VCenter, VirtualMachine
    from hosts.vsphere import client as vsphere
    from hosts.vsphere import sync as vsphere_sync

    vc = VCenter.objects.create(
        name=f"bench-{time.time_ns()}",
        url=info["url"],
        username=info["user"],
        password=info["password"],
        certificate=Path(info["certificate"]).read_text(),
        thumbprint=info["thumbprint"],
    )
    full, again, trips = [], [], 0
    with vsphere.session(vc) as si:
        for _ in range(runs):
            for model in (VirtualMachine, EsxHost, Datastore, Cluster, Datacenter):
                model.objects.filter(vcenter=vc).delete()
            started = time.monotonic()
            result = vsphere_sync.sync(vc, si)
            full.append(time.monotonic() - started)
            if result.vms != info["vms"] or len(result.created) != info["vms"]:
                raise RuntimeError(
                    f"synced {result.vms} VMs, created {len(result.created)}, of {info['vms']}"
                )
            trips = result.round_trips
            started = time.monotonic()
            result = vsphere_sync.sync(vc, si)
            again.append(time.monotonic() - started)
            if result.changed or result.created:
                raise RuntimeError("a second sync changed something")
            between()
    return {
        "sync_s": statistics.median(full),
        "resync_s": statistics.median(again),
        "round_trips": trips,
        "vc": vc,
    }


def measure_watch(info: dict[str, Any], vc: Any, changes: int, tmp: Path) -> float:
    """p95 (ms) from PowerOff/PowerOn asked of vCenter to the websocket message of that change."""
    import websockets
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
    from django.contrib.sessions.backends.db import SessionStore
    from pyVim.task import WaitForTask
    from pyVmomi import vim

    from hosts.models import VirtualMachine
    from hosts.vsphere import client as vsphere
    from tests.conftest import start_daphne, stop_daphne

    admin = get_user_model().objects.create_superuser(f"bench-{time.time_ns()}", password="x" * 20)
    session = SessionStore()
    session[SESSION_KEY] = str(admin.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = admin.get_session_auth_hash()
    session.save()
    moref = VirtualMachine.objects.filter(vcenter=vc, power_state="poweredOn").values_list(
        "moref", flat=True
    )[0]

    server = start_daphne(tmp, "portal", watchers=True)
    url = server.url
    try:
        common.wait_until(
            lambda: VCenter_connected(vc.pk), timeout=120, what="the watcher's first sync of the vCenter"
        )
        si = vsphere.connect(vc)
        vm = vim.VirtualMachine(moref, si._stub)

        async def run() -> list[float]:
            headers = {"Origin": url, "Cookie": f"sessionid={session.session_key}"}
            latencies = []
            async with websockets.connect(
                url.replace("http", "ws") + "/ws/live/", additional_headers=headers
            ) as ws:
                await ws.send(json.dumps({"subscribe": ["vsphere:all"]}))
                reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if reply.get("subscribed") != ["vsphere:all"]:
                    raise RuntimeError(f"not subscribed: {reply}")
                for i in range(changes):
                    wanted = "poweredOff" if i % 2 == 0 else "poweredOn"
                    task = vm.PowerOffVM_Task if wanted == "poweredOff" else vm.PowerOnVM_Task
                    started = time.monotonic()
                    waiting = asyncio.create_task(asyncio.to_thread(lambda task=task: WaitForTask(task())))
                    while True:
                        event = json.loads(await asyncio.wait_for(ws.recv(), 10))
                        data = event.get("data") or {}
                        if data.get("moref") == moref and data.get("power_state") == wanted:
                            latencies.append((time.monotonic() - started) * 1000)
                            break
                    await waiting
            return latencies

        latencies = asyncio.run(run())
        vsphere.disconnect(si)
    finally:
        stop_daphne(server)
    latencies.sort()
    return latencies[max(0, round(0.95 * len(latencies)) - 1)]


def VCenter_connected(pk: int) -> bool:
    from django.db import close_old_connections

    from hosts.models import VCenter

    close_old_connections()
    return VCenter.objects.filter(pk=pk, connected=True, last_sync__isnull=False).exists()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench.vsphere_sync", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--vms", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--changes", type=int, default=20, help="power changes timed for watch_p95_ms")
    args = parser.parse_args(argv)
    figures: dict[str, Any] = {"vms": args.vms}
    with tempfile.TemporaryDirectory(prefix="bench-vsphere-", dir=common.REPO / "var") as name:
        tmp = Path(name)
        try:
            setup_django(tmp / "bench.sqlite3")
            info = vcenter.up(tmp / "vcenter", vms=args.vms)
            try:
                go_runs: list[float] = []

                def baseline_run() -> None:
                    go = baseline(info, 1)
                    if go["vms"] != info["vms"]:
                        raise RuntimeError(f"the baseline read {go['vms']} VMs of {info['vms']}")
                    go_runs.extend(go["runs"])

                synced = measure_sync(info, args.runs, baseline_run)
                figures["sync_s"] = round(synced["sync_s"], 3)
                figures["baseline_s"] = round(statistics.median(go_runs), 3)
                figures["ratio"] = round(synced["sync_s"] / statistics.median(go_runs), 2)
                figures["resync_s"] = round(synced["resync_s"], 3)
                figures["round_trips"] = synced["round_trips"]
                figures["watch_p95_ms"] = round(measure_watch(info, synced["vc"], args.changes, tmp), 1)
            finally:
                vcenter.down(tmp / "vcenter")
        except (common.LabUnavailable, TimeoutError, RuntimeError) as exc:
            print(f"could not measure: {exc}", file=sys.stderr)
            return 1
    print(" ".join(f"{key}={value}" for key, value in figures.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
