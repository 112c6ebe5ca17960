"""What one watched host costs a watch shard: `python -m tests.bench.watch_hosts --hosts 200`.

On services of its own (a PostgreSQL and a Redis on spare ports, so nothing else counts),
a `manage.py watch --shard 1/1` process, as the README's Procfile runs it, watches first no
host, then ``--hosts`` hosts, each registered on one lab engine (TLS): per host an event
stream and a health check every ``PORTAL_HOST_CHECK_INTERVAL`` (15 s), as for separate
machines. Once every host is ON and every stream is open, the process is measured for
``--seconds``: resident memory, CPU time, Redis commands and PostgreSQL transactions and
row writes. The figures per host are (with hosts - without) / hosts.

Prints ``hosts=... rss_kb_per_host=... cpu_ms_per_host_per_min=...
redis_ops_per_host_per_s=... pg_xacts_per_host_per_s=... pg_rows_per_host_per_s=...`` last;
exits non-zero when it could not measure.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def _setup_django(database_url: str, redis_url: str) -> None:
    os.environ.update(DATABASE_URL=database_url, REDIS_URL=redis_url)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django

    django.setup()


def _make_hosts(engine_info: dict[str, Any], count: int) -> None:
    from hosts.fleet import counters
    from hosts.models import Host
    from portal.models import Project
    from tests.hosts.conftest import trusted_host

    Host.objects.all().delete()
    if not count:
        return
    project, _ = Project.objects.get_or_create(name="bench")
    first = trusted_host(engine_info, project, "watched-0000")
    Host.objects.bulk_create(
        [
            Host(
                project=project,
                name=f"watched-{i:04d}",
                docker_url=first.docker_url,
                tls_ca=first.tls_ca,
                tls_client_cert=first.tls_client_cert,
                tls_client_key=first.tls_client_key,
                tls_fingerprint=first.tls_fingerprint,
            )
            for i in range(1, count)
        ]
    )
    counters.repair()


def _proc(pid: int) -> tuple[int, float]:
    """(resident kB, CPU seconds) of a process."""
    rss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return rss, (int(fields[11]) + int(fields[12])) / ticks  # utime + stime


def _counters(database_url: str, redis_url: str) -> dict[str, float]:
    import psycopg
    import redis

    with psycopg.connect(database_url, autocommit=True) as conn:
        xacts, rows = conn.execute(
            "SELECT xact_commit + xact_rollback, tup_inserted + tup_updated + tup_deleted "
            "FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone() or (0, 0)
    info = redis.Redis.from_url(redis_url).info("stats")
    return {"xacts": float(xacts), "rows": float(rows), "redis": float(info["total_commands_processed"])}


def _measure(
    count: int, engine_info: dict[str, Any], env: dict[str, str], seconds: float, log: Path
) -> dict[str, float]:
    from django.db import close_old_connections

    from hosts.models import Host
    from tests.lab import common, engines

    _make_hosts(engine_info, count)
    sdk = engines.connect(engine_info)
    with closing(sdk):
        listeners = int(sdk.info()["NEventsListener"])
        watch = subprocess.Popen(
            [sys.executable, "manage.py", "watch", "--shard", "1/1"],
            cwd=REPO,
            env=env,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        try:

            def settled() -> bool:
                close_old_connections()
                on = Host.objects.filter(status="on").count()
                return on == count and int(sdk.info()["NEventsListener"]) >= listeners + count

            common.wait_until(settled, timeout=120, what=f"{count} hosts ON with their event streams open")
            before, (_, cpu_before) = _counters(env["DATABASE_URL"], env["REDIS_URL"]), _proc(watch.pid)
            started = time.monotonic()
            time.sleep(seconds)  # the window measured: a duration, not a wait on a condition
            elapsed = time.monotonic() - started
            rss, cpu_after = _proc(watch.pid)
            after = _counters(env["DATABASE_URL"], env["REDIS_URL"])
        finally:
            watch.terminate()
            watch.wait(timeout=30)
    return {
        "rss_kb": float(rss),
        "cpu_s_per_min": (cpu_after - cpu_before) * 60 / elapsed,
        "redis_per_s": (after["redis"] - before["redis"]) / elapsed,
        # Less this process's own two reads of the statistics.
        "xacts_per_s": max(0.0, after["xacts"] - before["xacts"] - 2) / elapsed,
        "rows_per_s": (after["rows"] - before["rows"]) / elapsed,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench.watch_hosts", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--hosts", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=45.0, help="the window measured (3 health checks)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    os.chdir(REPO)
    from tests.faults.postgres_server import PostgresServer
    from tests.faults.redis_server import RedisServer
    from tests.lab import common, engines

    with tempfile.TemporaryDirectory(prefix="bench-watch-", dir=REPO / "var") as name:
        tmp = Path(name)
        pg, redis_server = PostgresServer(), RedisServer(tmp)
        try:
            (engine_info,) = engines.up(tmp / "engines", plain=0, tls=1)
            pg.init()
            pg.start()
            redis_server.start()
            env = {**os.environ, "DATABASE_URL": pg.url, "REDIS_URL": redis_server.url}
            subprocess.run(
                [sys.executable, "manage.py", "migrate", "--noinput"],
                cwd=REPO,
                env=env,
                check=True,
                timeout=300,
            )
            _setup_django(pg.url, redis_server.url)
            idle = _measure(0, engine_info, env, args.seconds, tmp / "watch.log")
            busy = _measure(args.hosts, engine_info, env, args.seconds, tmp / "watch.log")
        except (common.LabUnavailable, RuntimeError, TimeoutError, subprocess.CalledProcessError) as exc:
            print(f"could not measure: {exc}", file=sys.stderr)
            return 1
        finally:
            engines.down(tmp / "engines")
            redis_server.stop()
            pg.remove()

    def per_host(key: str) -> float:
        return (busy[key] - idle[key]) / args.hosts

    print(
        f"idle_rss_mb={idle['rss_kb'] / 1024:.1f} rss_mb={busy['rss_kb'] / 1024:.1f} "
        f"redis_ops_per_s={busy['redis_per_s']:.2f} pg_xacts_per_s={busy['xacts_per_s']:.2f}"
    )
    print(
        f"hosts={args.hosts} rss_kb_per_host={per_host('rss_kb'):.1f} "
        f"cpu_ms_per_host_per_min={per_host('cpu_s_per_min') * 1000:.1f} "
        f"redis_ops_per_host_per_s={per_host('redis_per_s'):.3f} "
        f"pg_xacts_per_host_per_s={per_host('xacts_per_s'):.3f} "
        f"pg_rows_per_host_per_s={per_host('rows_per_s'):.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
