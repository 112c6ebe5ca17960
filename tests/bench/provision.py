"""What preparing new hosts costs the portal: `python -m tests.bench.provision --hosts 20`.

Per host: a one-time token, a server certificate from the portal's CA, the
cloud-config and its guestinfo encoding (what a clone needs before CloneVM_Task);
then a NoCloud seed ISO for one host, and one `cloud-init schema` run (Debian's,
the system Python). Prints key=value last; exits non-zero when it could not measure.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from tests.bench._db import scratch_database


def measure(hosts: int) -> dict[str, float]:
    from django.utils import timezone

    from hosts.models import ProvisionedVm, ProvisionRequest, VCenter
    from hosts.provision import cloud_config
    from hosts.provision import seed as provision_seed  # here, once Django is set up: not a cycle
    from portal.models import Project

    project = Project.objects.create(name=f"bench-{uuid.uuid4().hex[:6]}")
    vcenter = VCenter.objects.create(name="bench", url="https://vc.bench", username="u", password="p")
    request = ProvisionRequest.objects.create(
        project=project, vcenter=vcenter, count=hosts, name_pattern="b-{n}"
    )
    pvms = [
        ProvisionedVm.objects.create(
            request=request,
            name=f"b-{i}",
            instance_id=f"portal-{uuid.uuid4()}",
            token_hash=uuid.uuid4().hex,
            token_expires=timezone.now(),
        )
        for i in range(1, hosts + 1)
    ]
    start = time.perf_counter()
    seeds = []
    for pvm in pvms:
        seed, _ = provision_seed.issue_seed(pvm, "http://portal.bench")
        cloud_config.guestinfo(seed)
        seeds.append(seed)
    per_host = (time.perf_counter() - start) / hosts

    start = time.perf_counter()
    iso = cloud_config.seed_iso(cloud_config.seed_files(seeds[0]))
    iso_time = time.perf_counter() - start

    if not shutil.which("cloud-init"):
        raise RuntimeError("Debian's cloud-init is not installed")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "user-data"
        path.write_text(cloud_config.user_data(seeds[0]))
        start = time.perf_counter()
        result = subprocess.run(
            ["/usr/bin/python3", "/usr/bin/cloud-init", "schema", "--config-file", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        schema_time = time.perf_counter() - start
        if result.returncode:
            raise RuntimeError(f"cloud-init schema refused the cloud-config: {result.stdout}{result.stderr}")
    return {
        "hosts": hosts,
        "seed_ms_per_host": round(per_host * 1000, 1),
        "seed_iso_ms": round(iso_time * 1000, 1),
        "seed_iso_bytes": len(iso),
        "cloud_init_schema_s": round(schema_time, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hosts", type=int, default=20)
    args = parser.parse_args()
    try:
        with scratch_database():
            figures = measure(args.hosts)
    except Exception as exc:  # noqa: BLE001 - a benchmark reports why it could not measure
        print(f"could not measure: {exc}", file=sys.stderr)
        return 1
    print(" ".join(f"{k}={v}" for k, v in figures.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
