"""The fleet search over a large fleet: `python -m tests.bench.search --hosts 1000 --containers 20000`.

Fills a scratch database with ``--hosts`` hosts in 20 projects and, as the engines watcher keeps
them (hosts.inventory), ``--containers`` containers spread over them (names, images, Compose
labels, published ports), five images and two volumes per host. Then asks the search page as
the browser's as-you-type does (an htmx GET of the results), for words that find many objects,
few, one or none, as an Admin and as a Viewer of 10 of the 20 projects. Prints ``hosts=...
containers=... objects=... database=... trigram_index=0|1 p50_ms=... p95_ms=... queries=...``
last (``queries``: the most any one search took); exits non-zero when it could not measure.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

RUNS = 10
#: Many matches, a handful, one, none; a label, a port, an image, a partial word as typed.
WORDS = ("web", "8080", "tier=backend", "postgres:16", "api-00042", "shop-7 worker", "redis", "no-such-thing")
APPS = ("web", "api", "worker", "db", "cache")
IMAGES = ("nginx:1.25", "registry.example.com/shop/api:2.3", "busybox:1.36", "postgres:16", "redis:7")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--containers", type=int, default=20_000)
    args = parser.parse_args()

    from tests.bench._db import scratch_database

    with scratch_database():
        from django.contrib.auth import get_user_model
        from django.db import connection
        from django.test import Client
        from django.test.utils import CaptureQueriesContext
        from django.urls import reverse
        from django.utils import timezone

        from hosts.inventory import reading
        from hosts.inventory.indexes import add_trigram_index
        from hosts.models import EngineObject, Host, HostStatus
        from portal.models import Membership, Project, Role

        projects = Project.objects.bulk_create([Project(name=f"team-{i:02d}") for i in range(20)])
        Host.objects.bulk_create(
            [
                Host(
                    project=projects[i % 20],
                    name=f"photon-{i:05d}",
                    docker_url=f"tcp://10.{i // 65536}.{i // 256 % 256}.{i % 256}:2376",
                    status=HostStatus.ON,
                )
                for i in range(args.hosts)
            ],
            batch_size=1000,
        )
        hosts = list(Host.objects.order_by("pk"))
        now = timezone.now()

        def row(host: Host, seen: reading.Seen) -> EngineObject:
            return EngineObject(
                host=host, kind=seen.kind, engine_id=seen.engine_id, updated=now, **seen.fields()
            )

        objects = []
        for i in range(args.containers):
            app = APPS[i % len(APPS)]
            seen = reading.Seen(
                reading.CONTAINER,
                f"{i:064x}",
                f"{app}-{i:05d}",
                image=IMAGES[i % len(IMAGES)],
                state="running" if i % 4 else "exited",
                labels={
                    "com.docker.compose.project": f"shop-{i % 50}",
                    "com.docker.compose.service": app,
                    "tier": "backend" if app in ("api", "db") else "frontend",
                },
                ports=[f"0.0.0.0:{8000 + i % 200}->80/tcp"] if app == "web" else [],
            )
            objects.append(row(hosts[i % len(hosts)], seen))
        for n, host in enumerate(hosts):
            for k, image in enumerate(IMAGES):
                objects.append(
                    row(host, reading.Seen(reading.IMAGE, f"sha256:{n:032x}{k:032x}", image, image=image))
                )
            for name in (f"data-{n}", f"logs-{n}"):
                objects.append(row(host, reading.Seen(reading.VOLUME, name, name, state="local")))
        EngineObject.objects.bulk_create(objects, batch_size=2000)
        users = get_user_model().objects
        admin = users.create_user("bench-admin", password="x", is_superuser=True, is_staff=True)
        viewer = users.create_user("bench-viewer", password="x")
        Membership.objects.bulk_create(
            [Membership(user=viewer, project=p, role=Role.VIEWER) for p in projects[:10]]
        )
        with connection.schema_editor() as editor:
            trigram = add_trigram_index(editor)  # as the migration does (PostgreSQL only)
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
        if EngineObject.objects.count() != len(objects):
            print("could not measure: the inventory was not filled", file=sys.stderr)
            return 1

        url = reverse("hosts:search")
        timings: list[float] = []
        most_queries = 0
        for user in (admin, viewer):
            client = Client(HTTP_HOST="127.0.0.1")
            client.force_login(user)
            client.get(url, {"q": "warm"}, HTTP_HX_REQUEST="true")  # templates compiled, connection open
            for word in WORDS:
                for _ in range(RUNS):
                    started = time.perf_counter()
                    response = client.get(url, {"q": word}, HTTP_HX_REQUEST="true")
                    timings.append((time.perf_counter() - started) * 1000)
                    if response.status_code != 200:
                        print(f"could not measure: status {response.status_code} for {word}", file=sys.stderr)
                        return 1
                with CaptureQueriesContext(connection) as queries:
                    response = client.get(url, {"q": word}, HTTP_HX_REQUEST="true")
                most_queries = max(most_queries, len(queries))
                found = response.content.count(b'class="found-row"')
                if word == "web" and found == 0:
                    print("could not measure: nothing found for 'web'", file=sys.stderr)
                    return 1
        timings.sort()
        p50 = round(statistics.median(timings), 1)
        p95 = round(timings[int(len(timings) * 0.95) - 1], 1)
        print(
            f"hosts={args.hosts} containers={args.containers} objects={len(objects)} "
            f"database={connection.vendor} trigram_index={int(trigram)} "
            f"p50_ms={p50} p95_ms={p95} queries={most_queries}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
