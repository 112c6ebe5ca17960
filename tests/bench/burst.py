"""A burst of page loads against PostgreSQL: `python -m tests.bench.burst --requests 960 --concurrency 24`.

Production topology (DATABASE_URL on PostgreSQL, REDIS_URL), two daphnes: ``--concurrency``
signed-in clients load the dashboard ``--requests`` times in all, spread over both
daphnes, while the benchmark samples the connections PostgreSQL holds for the portal's
database. Prints ``requests=... errors=... pg_conns_peak=... pg_conns_after=...
max_connections=...`` last (pg_conns_after: held once the burst is over and the pool's
idle limit passed; errors: any answer but 200).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def connections(database: str) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", [database])
        return int(cursor.fetchone()[0])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=960)
    parser.add_argument("--concurrency", type=int, default=24)
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        print("could not measure: set DATABASE_URL to PostgreSQL", file=sys.stderr)
        return 1
    import requests

    from tests.bench._live import portal
    from tests.lab import common

    with tempfile.TemporaryDirectory(prefix="bench-burst-", dir=common.REPO / "var") as tmp:
        try:
            with portal(2, Path(tmp)) as p:
                from django.conf import settings
                from django.db import connection

                database = connection.settings_dict["NAME"]
                with connection.cursor() as cursor:
                    cursor.execute("SHOW max_connections")
                    max_connections = int(cursor.fetchone()[0])
                peak = 0
                stop = threading.Event()

                def sample() -> None:
                    nonlocal peak
                    try:
                        while not stop.is_set():
                            peak = max(peak, connections(database))
                            stop.wait(0.05)
                    finally:
                        connection.close()  # this thread's: back to the pool

                def load(i: int) -> int:
                    url = p.urls[i % len(p.urls)]
                    try:
                        response = requests.get(url + "/", cookies={"sessionid": p.session_key}, timeout=60)
                    except requests.RequestException:
                        return 0
                    return response.status_code

                sampler = threading.Thread(target=sample)
                sampler.start()
                try:
                    with ThreadPoolExecutor(args.concurrency) as pool:
                        statuses = list(pool.map(load, range(args.requests)))
                finally:
                    stop.set()
                    sampler.join()
                idle = float(settings.DATABASES["default"]["OPTIONS"]["pool"]["max_idle"])
                time.sleep(idle + 5)  # the pool's idle limit is a period: wait it out, then count
                after = connections(database) - 1  # this benchmark's own
        except (RuntimeError, TimeoutError, OSError) as exc:
            print(f"could not measure: {exc}", file=sys.stderr)
            return 1
    errors = sum(status != 200 for status in statuses)
    print(
        f"requests={args.requests} errors={errors} pg_conns_peak={peak} pg_conns_after={after} "
        f"max_connections={max_connections}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
