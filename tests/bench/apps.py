"""What placing and deploying an application costs: `python -m tests.bench.apps --services 20 --hosts 4`.

The plan is pure: no database, no Django, no engine. ``--services`` services, a mix of the placement rules
(tagged, pinned, spread replicas, replicas sharing a host under max_per_host, plain ones with
memory and CPU needs), placed on ``--hosts`` candidates by ``hosts.applications.placement.plan``
``--runs`` times. Prints ``plan_ms=... plan_p95_ms=... services=... hosts=... placements=...``
last (the median and 95th percentile of one whole plan, in milliseconds); exits non-zero if the
plan does not fit, as a failing plan stops early and would measure less than a real one.
Then, unless ``--no-deploy``, the three-tier template deployed by the portal over two lab engines
against ``docker-compose up -d`` on one (``tests.bench.app_deploy``): ``deploy_s``, ``compose_s``
and ``ratio`` join the same line.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from typing import Any

from hosts.applications.placement import Candidate, GiB, MiB, Need, plan


def pool(hosts: int) -> list[Candidate]:
    """Half the hosts tagged db (every other one of those also ssd), half web; room for all."""
    return [
        Candidate(
            id=i + 1,
            name=f"photon-{i}",
            on=True,
            tags=frozenset({"db", "ssd"} if i % 4 == 0 else {"db"} if i % 2 == 0 else {"web"}),
            memory_free=64 * GiB,
            cpus_free=32.0,
            containers=i * 3,
            max_containers=500,
        )
        for i in range(hosts)
    ]


def needs(services: int, hosts: int) -> list[Need]:
    """Five kinds of service in turn, sized so they fit ``hosts`` hosts (spread needs that many)."""
    web_hosts = hosts // 2
    made = []
    for i in range(services):
        kind = i % 5
        if kind == 0:
            made.append(Need(f"db-{i}", memory=2 * GiB, cpus=1.0, tags=frozenset({"ssd"})))
        elif kind == 1:
            made.append(
                Need(
                    f"web-{i}", replicas=max(1, min(2, web_hosts)), memory=256 * MiB, tags=frozenset({"web"})
                )
            )
        elif kind == 2:
            made.append(Need(f"api-{i}", replicas=min(3, hosts), memory=512 * MiB, cpus=0.5))
        elif kind == 3:
            made.append(Need(f"worker-{i}", replicas=4, memory=128 * MiB, max_per_host=2, spread=False))
        else:
            made.append(Need(f"cache-{i}", memory=1 * GiB, cpus=0.25, pin=f"photon-{i % hosts}"))
    return made


def measure_plan(services: int, hosts: int, runs: int) -> dict[str, Any]:
    wanted, candidates = needs(services, hosts), pool(hosts)
    result = plan(wanted, candidates)  # once first: a plan that does not fit is no measure
    if not result.ok:
        raise RuntimeError(f"the benchmark's application does not fit: {result.failure}")
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        plan(wanted, candidates)
        timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    return {
        "plan_ms": round(statistics.median(timings), 3),
        "plan_p95_ms": round(timings[min(len(timings) - 1, int(len(timings) * 0.95))], 3),
        "services": services,
        "hosts": hosts,
        "placements": len(result.placements),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.apps", description=__doc__.split("\n\n")[0])
    parser.add_argument("--services", type=int, default=20)
    parser.add_argument("--hosts", type=int, default=4)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--no-deploy", action="store_true", help="the plan only (no lab, no root)")
    args = parser.parse_args(argv)
    if args.hosts < 2 or args.services < 0 or args.runs < 1:
        # Two hosts at least: the mix has db and web hosts, and workers capped at 2 per host.
        parser.error("--hosts must be 2 or more, --runs 1 or more, --services 0 or more")
    try:
        figures = measure_plan(args.services, args.hosts, args.runs)
    except RuntimeError as exc:
        print(f"could not measure: {exc}", file=sys.stderr)
        return 1
    if not args.no_deploy:
        # Its own module: it needs the lab's engines (root) and Django's settings for the deployer.
        from tests.bench import app_deploy

        try:
            figures.update(app_deploy.measure())
        except (RuntimeError, subprocess.CalledProcessError, TimeoutError) as exc:
            print(f"could not measure the deploy: {exc}", file=sys.stderr)
            return 1
    print(" ".join(f"{key}={value}" for key, value in figures.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
