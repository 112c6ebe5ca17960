"""Patch status for a fleet from cached repository metadata, against the package manager on
one host: `python -m tests.bench.patch_status --hosts 200 --packages 400 --advisories 300`.

Synthetic, deterministic (seeded) metadata: a base repository with ``--packages`` packages,
an updates repository with newer versions of most of them and ``--advisories`` advisories
(security, bugfix, enhancement; one to three packages each), cached as JSON per repository as
the portal keeps it. Each of ``--hosts`` hosts has every package installed, at the base
version, the updated one, or (a few) a version newer than both. Timed, cold (version keys not
yet cached), best of ``--runs``: loading both repositories from their JSON, indexing them,
and applicability for every host (``portal_ms``, target <= 500).

Against it: `dnf updateinfo list` run over SSH on one lab host (tests.lab.rpm_repos, metadata
already in dnf's cache, as on a host that ran it before), best of ``--runs``: ``dnf_ms``.
``ratio_per_host`` = dnf_ms / (portal_ms / hosts): how many hosts' applicability the portal
computes in the time one host's package manager answers. Prints key=value last; exits non-zero
when it could not measure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
TARGET_MS = 500


def synthetic(
    packages: int, advisories: int, hosts_count: int, seed: int = 19
) -> tuple[str, str, list[list[list[Any]]]]:
    """(base JSON, updates JSON, hosts' installed packages as JSON rows)."""
    from hosts.patches.records import Advisory, AdvisoryPackage, Nevra, RepoMetadata

    rng = random.Random(seed)
    arches = ["x86_64"] * 3 + ["noarch"]
    base, updates = [], []
    for i in range(packages):
        name, arch = f"pkg-{i:04d}", rng.choice(arches)
        major, minor = rng.randint(0, 9), rng.randint(0, 30)
        base.append(
            Nevra(name, rng.choice([0, 0, 0, 1]), f"{major}.{minor}.{rng.randint(0, 9)}", "1.ph5", arch)
        )
    for old in base:
        if rng.random() < 0.9:
            updates.append(Nevra(old.name, old.epoch, old.version, f"{rng.randint(2, 9)}.ph5", old.arch))
    kinds = ["security"] * 5 + ["bugfix"] * 3 + ["enhancement"]
    fixes = [
        Advisory(
            id=f"PHSA-2026-5.0-{i:04d}",
            type=(kind := rng.choice(kinds)),
            severity=rng.choice(["Critical", "Important", "Moderate", "Low"]) if kind == "security" else "",
            title=f"advisory {i}",
            issued="2026-11-30 00:00:00",
            cves=tuple(f"CVE-2026-{rng.randint(1000, 99999)}" for _ in range(rng.randint(0, 3))),
            packages=tuple(
                AdvisoryPackage(p, p.name.endswith("7")) for p in rng.sample(updates, rng.randint(1, 3))
            ),
        )
        for i in range(advisories)
    ]
    base_repo = RepoMetadata("http://repo/base/", "1", "a" * 64, tuple(base))
    updates_repo = RepoMetadata("http://repo/updates/", "1", "b" * 64, tuple(updates), tuple(fixes))
    newer = {u.name: u for u in updates}
    hosts = []
    for _ in range(hosts_count):
        rows = []
        for old in base:
            pick = rng.random()
            if pick < 0.6 or old.name not in newer:
                rows.append(old.to_json())
            elif pick < 0.97:
                rows.append(newer[old.name].to_json())
            else:
                rows.append(Nevra(old.name, old.epoch, old.version, "99.ph5", old.arch).to_json())
        hosts.append(rows)
    return json.dumps(base_repo.to_json()), json.dumps(updates_repo.to_json()), hosts


def portal_run(cached: tuple[str, str], hosts: list[list[list[Any]]]) -> tuple[float, int, int]:
    """Seconds for the fleet, and the updates and advisories found (so the work is not skipped)."""
    from hosts.patches import versions
    from hosts.patches.applicability import RepoIndex, applicability
    from hosts.patches.records import Nevra, RepoMetadata

    versions.evr_key.cache_clear()
    installed = [[Nevra.from_json(row) for row in rows] for rows in hosts]
    started = time.perf_counter()
    index = RepoIndex(RepoMetadata.from_json(json.loads(text)) for text in cached)
    updates = advisories = 0
    for packages in installed:
        result = applicability(packages, index)
        updates += len(result.updates)
        advisories += len(result.advisories)
    return time.perf_counter() - started, updates, advisories


def dnf_run(runs: int) -> float:
    """Best seconds of `dnf updateinfo list` on one lab host (its metadata cached by a first run)."""
    import asyncssh

    from tests.lab import common, photon_hosts, rpm_repos

    with tempfile.TemporaryDirectory(prefix="patch-bench-", dir=common.REPO / "var") as tmp:
        root = Path(tmp)
        try:
            lab = photon_hosts.up(root / "hosts", hosts=1)
            rpm_repos.up(root / "rpm", lab)
            host = lab[0]

            async def timed() -> list[float]:
                trusted = asyncssh.import_public_key(str(host["host_key"]))
                async with asyncssh.connect(
                    str(host["address"]),
                    username="root",
                    client_keys=[str(host["private_key"])],
                    known_hosts=([trusted], [], []),
                ) as conn:
                    command = rpm_repos.dnf_command("updateinfo", "list")
                    await conn.run(rpm_repos.dnf_command("makecache"), check=True)
                    took = []
                    for _ in range(runs):
                        started = time.perf_counter()
                        await conn.run(command, check=True)
                        took.append(time.perf_counter() - started)
                    return took

            return min(asyncio.run(timed()))
        finally:
            rpm_repos.down(root / "rpm")
            photon_hosts.down(root / "hosts")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", type=int, default=200)
    parser.add_argument("--packages", type=int, default=400)
    parser.add_argument("--advisories", type=int, default=300)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django

    django.setup()
    base, updates, hosts = synthetic(args.packages, args.advisories, args.hosts)
    results = [portal_run((base, updates), hosts) for _ in range(args.runs)]
    portal_s = min(r[0] for r in results)
    _, found_updates, found_advisories = results[0]
    if not found_updates or not found_advisories:
        print("could not measure: the synthetic fleet has nothing to update", file=sys.stderr)
        return 1
    figures: dict[str, object] = {
        "hosts": args.hosts,
        "packages": args.packages,
        "advisories": args.advisories,
        "updates_found": found_updates,
        "advisories_found": found_advisories,
        "portal_ms": round(portal_s * 1000, 1),
        "per_host_ms": round(portal_s * 1000 / args.hosts, 3),
        "target_ms": TARGET_MS,
        "within_target": int(portal_s * 1000 <= TARGET_MS),
    }
    try:
        dnf_s = dnf_run(max(args.runs // 2, 3))
    except Exception as exc:  # noqa: BLE001 - any lab failure: report it, with what was measured
        print(f"could not measure dnf on a lab host: {exc}", file=sys.stderr)
        print(" ".join(f"{k}={v}" for k, v in figures.items()))
        return 1
    figures["dnf_ms"] = round(dnf_s * 1000, 1)
    figures["ratio_per_host"] = round(dnf_s / (portal_s / args.hosts), 1)
    print(" ".join(f"{k}={v}" for k, v in figures.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
