"""How fast the lab starts and stops: `python -m tests.bench.lab`.

Prints one line of key=value figures (seconds) last; exits non-zero if it could
not measure. Runs each peer on its own, then the whole lab through its CLI.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.lab import __main__ as lab
from tests.lab import common, engines, harbor, photon_hosts, registries, vcenter


def timed(action: Callable[[], Any]) -> float:
    started = time.monotonic()
    action()
    return round(time.monotonic() - started, 2)


def main() -> int:
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="lab-bench-", dir=common.REPO / "var") as tmp:
        root = Path(tmp)
        peers: list[tuple[str, Callable[[Path], Any], Callable[[Path], None]]] = [
            ("vcenter_100vms", lambda d: vcenter.up(d, vms=100), vcenter.down),
            ("vcenter_2000vms", lambda d: vcenter.up(d, vms=2000), vcenter.down),
            ("engines", lambda d: engines.up(d, plain=1, tls=1), engines.down),
            ("registries", lambda d: registries.up(d), registries.down),
            ("harbor", lambda d: harbor.up(d), harbor.down),
            ("hosts_2", lambda d: photon_hosts.up(d, hosts=2), photon_hosts.down),
            ("hosts_20", lambda d: photon_hosts.up(d, hosts=20), photon_hosts.down),
            ("hosts_1_full", lambda d: photon_hosts.up(d, hosts=1, full_hosts=1), photon_hosts.down),
        ]
        try:
            for name, up, down in peers:
                workdir = root / name
                figures[f"{name}_up_s"] = timed(lambda up=up, workdir=workdir: up(workdir))
                figures[f"{name}_down_s"] = timed(lambda down=down, workdir=workdir: down(workdir))
            whole = root / "whole"
            figures["lab_up_s"] = timed(lambda: lab.up(whole, hosts=2, vms=100))
            figures["lab_down_s"] = timed(lambda: lab.down(whole))
        except (common.LabUnavailable, TimeoutError, RuntimeError) as exc:
            print(f"could not measure: {exc}", file=sys.stderr)
            return 1
    print(" ".join(f"{key}={value}" for key, value in figures.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
