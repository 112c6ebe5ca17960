"""What drawing the provisioning form's placement pickers costs: `python -m tests.bench.placement`.

Against one lab vcsim of ``--clusters`` clusters, with ``--pools`` resource pools under
each and ``--folders`` VM folders (half of them nested) made first: ``read_ms``, one
live read of the placement (datacenters, clusters and pools, VM folders, networks,
datastores), the median of ``--runs``; ``round_trips`` to vCenter for one read; the
counts read. The last line is ``key=value`` pairs; exits non-zero if it could not measure.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pyVmomi import vim

from tests.bench.vsphere_sync import setup_django
from tests.lab import common, vcenter


def populate(si: vim.ServiceInstance, pools: int, folders: int) -> None:
    allocation = vim.ResourceAllocationInfo(
        limit=-1, reservation=0, expandableReservation=True, shares=vim.SharesInfo(level="normal")
    )
    spec = vim.ResourceConfigSpec(cpuAllocation=allocation, memoryAllocation=allocation)
    dc = si.RetrieveContent().rootFolder.childEntity[0]
    for cluster in dc.hostFolder.childEntity:
        for i in range(pools):
            cluster.resourcePool.CreateResourcePool(f"pool-{i}", spec)
    parent = dc.vmFolder
    for i in range(folders):
        made = parent.CreateFolder(f"folder-{i}")
        parent = made if i % 2 == 0 else dc.vmFolder  # every other one nested in the one before


def measure(si: vim.ServiceInstance, runs: int) -> dict[str, Any]:
    from hosts.vsphere import placement
    from hosts.vsphere.client import collector as vsphere_collector

    timings = []
    counter = vsphere_collector.Counter()
    where = placement.Placement()
    for _ in range(runs):
        counter.calls = 0
        started = time.perf_counter()
        where = placement.read(si, counter=counter)
        timings.append(time.perf_counter() - started)
    return {
        "read_ms": round(statistics.median(timings) * 1000, 1),
        "round_trips": counter.calls,
        "pools": len(where.pools),
        "folders": len(where.folders),
        "networks": len(where.networks),
        "datastores": len(where.datastores),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench.placement", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--clusters", type=int, default=8)
    parser.add_argument("--pools", type=int, default=10, help="resource pools per cluster")
    parser.add_argument("--folders", type=int, default=200)
    parser.add_argument("--vms", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-placement-", dir=common.REPO / "var") as name:
        tmp = Path(name)
        try:
            setup_django(tmp / "bench.sqlite3")
            info = vcenter.up(tmp / "vcenter", clusters=args.clusters, vms=args.vms)
            try:
                from hosts.vsphere import client as vsphere

                pem = Path(info["certificate"]).read_text()
                si = vsphere.connect_pinned(info["url"], info["user"], info["password"], pem)
                try:
                    populate(si, args.pools, args.folders)
                    figures = measure(si, args.runs)
                finally:
                    vsphere.disconnect(si)
            finally:
                vcenter.down(tmp / "vcenter")
        except (common.LabUnavailable, TimeoutError, RuntimeError) as exc:
            print(f"could not measure: {exc}", file=sys.stderr)
            return 1
    print(" ".join(f"{key}={value}" for key, value in {"clusters": args.clusters, **figures}.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
