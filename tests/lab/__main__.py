"""The lab's one entry point.

    python -m tests.lab up [--hosts N] [--full-hosts K] [--vms M] [--templates T] [--repos R]
                           [--json] [--register]
    python -m tests.lab status [--json]
    python -m tests.lab down

``up`` starts every peer (in parallel where they don't depend on each other),
waits until each answers, writes the document below to ``LAB_ROOT/lab.json`` and
prints it; ``status`` prints it again while the lab runs; ``down`` stops
everything and leaves nothing behind. The document:

    {"vcenter": {"url", "user", "password", "thumbprint"},
     "docker": [{"url", "tls": {"ca", "cert", "key"} | null}],
     "registries": [{"kind": "distribution" | "harbor", "url", "auth", "user", "password"}],
     "hosts": [{"name", "address", "port", "user", "private_key", "host_key", "full"}],
     "directory": {"url", "ldaps_url", "ca", "bind_dn", "bind_password", "base", ...}}
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tests.lab import common, engines, harbor, oidc, photon_hosts, registries, slapd, vcenter

STATE = "lab.json"
FIRST_STEPS = """
Next: `make run`, open http://127.0.0.1:8000/ and sign in as admin (its password is
printed by `make run` on its first start, or set PORTAL_ADMIN_PASSWORD). Project "Lab"
has it all. Where to click first:
  Hosts       every lab host ON, live; open one for its containers
  Registries  Lab anonymous, lab/busybox: deploy its tag to a host; Lab harbor: labels, scans
  Changes     profile "Docker remote API": applied; plan another change and approve it
  vSphere     Lab vCenter: power a VM off and on, follow the task
  Provision   clone photon-5-template-1 into a new host (the Lab project's quota allows it)
README.md, "Ten minutes with the lab", walks through each.
"""


def peer_dirs(root: Path) -> dict[str, Path]:
    return {
        name: root / name
        for name in ("hosts", "vcenter", "engines", "registries", "harbor", "directory", "oidc")
    }


def up(
    root: Path = common.LAB_ROOT,
    *,
    hosts: int = 2,
    full_hosts: int | None = None,
    vms: int = 100,
    templates: int = 1,
    repos: int = 300,
) -> dict[str, Any]:
    """Start every peer; ``full_hosts`` of the hosts (all by default) run dockerd, as Photon hosts do."""
    full_hosts = hosts if full_hosts is None else full_hosts
    common.require_root()
    if (root / STATE).exists():
        raise common.LabUnavailable(
            f"a lab is already up (see {root / STATE}); run `python -m tests.lab down`"
        )
    dirs = peer_dirs(root)
    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            started_hosts = pool.submit(photon_hosts.up, dirs["hosts"], hosts=hosts, full_hosts=full_hosts)
            started_engines = pool.submit(engines.up, dirs["engines"])
            started_registries = pool.submit(registries.up, dirs["registries"], repos=repos)
            started_harbor = pool.submit(harbor.up, dirs["harbor"], repos=min(repos, 50))
            started_directory = pool.submit(slapd.up, dirs["directory"])
            started_oidc = pool.submit(oidc.up, dirs["oidc"])
            host_docs = started_hosts.result()
            # vCenter's first Photon VMs carry the lab hosts' addresses and names, so
            # discovery links them to the hosts the portal reaches over SSH.
            guests = [{"ip": str(h["address"]), "hostname": str(h["name"])} for h in host_docs]
            document = {
                "vcenter": vcenter.up(dirs["vcenter"], vms=vms, guests=guests, templates=templates),
                "docker": started_engines.result(),
                "registries": [*started_registries.result(), started_harbor.result()],
                "hosts": host_docs,
                "directory": started_directory.result(),
                "oidc": started_oidc.result(),
            }
    except BaseException:
        down(root)
        raise
    (root / STATE).write_text(json.dumps(document, indent=2))
    return document


def status(root: Path = common.LAB_ROOT) -> dict[str, Any] | None:
    path = root / STATE
    return json.loads(path.read_text()) if path.exists() else None


def down(root: Path = common.LAB_ROOT) -> None:
    dirs = peer_dirs(root)
    # Each down is idempotent and cleans up after a crashed up; run them all even if one fails.
    errors = []
    for module, name in (
        (vcenter, "vcenter"),
        (harbor, "harbor"),
        (registries, "registries"),
        (engines, "engines"),
        (photon_hosts, "hosts"),
        (slapd, "directory"),
        (oidc, "oidc"),
    ):
        try:
            module.down(dirs[name])
        except Exception as exc:  # noqa: BLE001 - report, and go on tearing down the rest
            errors.append(f"{name}: {exc}")
    (root / STATE).unlink(missing_ok=True)
    if errors:
        raise RuntimeError("lab teardown incomplete: " + "; ".join(errors))
    shutil.rmtree(root, ignore_errors=True)


def summary(document: dict[str, Any]) -> str:
    lines = [f"vCenter    {document['vcenter']['url']}  user {document['vcenter']['user']}"]
    lines += [f"docker     {e['url']}{'  (TLS)' if e['tls'] else ''}" for e in document["docker"]]
    lines += [f"registry   {r['url']}  {r['kind']}, auth {r['auth']}" for r in document["registries"]]
    for h in document["hosts"]:
        inside = "  (dockerd inside)" if h["full"] else ""
        lines.append(f"host       {h['name']}  {h['user']}@{h['address']}:{h['port']}{inside}")
    if "directory" in document:
        d = document["directory"]
        lines.append(f"directory  {d['url']} (StartTLS), {d['ldaps_url']}  bind {d['bind_dn']}")
    if "oidc" in document:
        o = document["oidc"]
        lines.append(f"oidc       issuer {o['issuer']}  client {o['client_id']}  CA {o['ca']}")
    return "\n".join(lines)


def register_in_portal(document: dict[str, Any]) -> dict[str, int]:
    import os

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    django.setup()
    from django.core.management import call_command

    from tests.lab.register import register

    call_command("migrate", interactive=False, verbosity=0)
    return register(document)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.lab", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("up", help="start every peer")
    start.add_argument("--hosts", type=int, default=2, help="Photon-like SSH hosts (default 2)")
    start.add_argument(
        "--full-hosts", type=int, default=None, help="of those, how many run dockerd inside (default all)"
    )
    start.add_argument("--vms", type=int, default=100, help="VMs in vCenter (default 100)")
    start.add_argument(
        "--templates", type=int, default=1, help="Photon VMs marked as templates in vCenter (default 1)"
    )
    start.add_argument("--repos", type=int, default=300, help="repositories per registry (default 300)")
    start.add_argument("--json", action="store_true", help="print the JSON document only")
    start.add_argument(
        "--register", action="store_true", help="also register every peer in the local portal (make lab)"
    )
    show = commands.add_parser("status", help="print the running lab's document")
    show.add_argument("--json", action="store_true", help="print the JSON document only")
    commands.add_parser("down", help="stop everything")
    args = parser.parse_args(argv)

    try:
        if args.command == "down":
            down()
            print("lab is down")
            return 0
        if args.command == "status":
            document = status()
            if document is None:
                print("no lab is up", file=sys.stderr)
                return 1
        else:
            began = time.monotonic()
            document = up(
                hosts=args.hosts,
                full_hosts=args.full_hosts,
                vms=args.vms,
                templates=args.templates,
                repos=args.repos,
            )
            if not args.json:
                print(f"lab up in {time.monotonic() - began:.1f}s")
            if args.register:
                print(f"registered in the portal: {register_in_portal(document)}", file=sys.stderr)
                print(FIRST_STEPS, file=sys.stderr)
    except (common.LabUnavailable, TimeoutError, RuntimeError) as exc:
        print(f"lab: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(document, indent=2) if args.json else summary(document))
    return 0


if __name__ == "__main__":
    sys.exit(main())
