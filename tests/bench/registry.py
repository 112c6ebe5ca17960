"""How fast a page of a 1,000-tag repository renders: `python -m tests.bench.registry`.

In one run, against the lab's token registry (the Docker token flow, as Harbor's):

- cold: the portal renders the repository's first page of tags with every detail
  it shows (digest, type, platforms, size, created) from an empty cache;
- skopeo: the same information gathered with Debian's skopeo (`skopeo list-tags`,
  then `skopeo inspect --no-tags` for each tag on that page, 16 at a time);
- warm: the same page rendered again (cache filled), median of several;
- newest first, from an empty cache again: the first page as a person waits for it
  (the page with its placeholder, then the table's own request, which dates every
  tag once), and the next page (the cached order, that page's details only).

Prints ``tags=... cold_s=... skopeo_s=... ratio=... warm_ms=...
newest_first_first_page_ms=... newest_first_next_page_ms=... newest_first_cold_s=...
newest_first_round_trips=...`` last (ratio = cold_s / skopeo_s; targets: ratio <= 0.7,
warm_ms <= 100, newest_first_cold_s <= 1; newest_first_cold_s is the first page of newest
first from an empty cache, in seconds, and newest_first_round_trips the registry requests
its two pages made); exits non-zero if it could not measure.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tests.lab import common, registries, seed

WARM_RUNS = 7
SKOPEO_CONCURRENCY = 16


def setup_django(tmp: Path) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    if not os.environ.get("DATABASE_URL"):
        os.environ["PORTAL_SQLITE_PATH"] = str(tmp / "bench.sqlite3")
    else:
        # Never the real database: a throwaway one beside it.
        base = os.environ["DATABASE_URL"].rsplit("/", 1)[0]
        os.environ["DATABASE_URL"] = f"{base}/bench_registry"
        _create_pg_database(base)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    from django.test.utils import setup_test_environment

    setup_test_environment()  # so the client sees the rendered context (and the rows)


def _create_pg_database(base: str) -> None:
    import psycopg

    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS bench_registry")
        conn.execute("CREATE DATABASE bench_registry")


def skopeo(info: dict[str, Any], repository: str, tags: list[str]) -> float:
    binary = shutil.which("skopeo")
    if not binary:
        raise RuntimeError("skopeo not found: apt-get install skopeo")
    host = str(info["url"]).split("://", 1)[1]
    common_args = ["--tls-verify=false", "--creds", f"{info['user']}:{info['password']}"]
    env = {**os.environ, "HOME": tempfile.mkdtemp(prefix="skopeo-home-")}

    def run(argv: list[str]) -> None:
        subprocess.run(argv, check=True, capture_output=True, timeout=120, env=env)

    started = time.monotonic()
    run([binary, "list-tags", *common_args, f"docker://{host}/{repository}"])
    with ThreadPoolExecutor(max_workers=SKOPEO_CONCURRENCY) as pool:
        jobs = [
            pool.submit(
                run, [binary, "inspect", "--no-tags", *common_args, f"docker://{host}/{repository}:{tag}"]
            )
            for tag in tags
        ]
        for job in jobs:
            job.result()
    return time.monotonic() - started


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="registry-bench-", dir=common.REPO / "var") as tmp:
        root = Path(tmp)
        try:
            lab = registries.up(root / "lab")
        except common.LabUnavailable as exc:
            print(f"lab unavailable: {exc}", file=sys.stderr)
            return 1
        try:
            return measure(root, next(r for r in lab if r["name"] == "token"))
        finally:
            registries.down(root / "lab")


def measure(root: Path, info: dict[str, Any]) -> int:
    setup_django(root)
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.urls import reverse

    from registry.clients import http
    from registry.models import Registry

    user = get_user_model().objects.create_user("bench", password="x", is_superuser=True, is_staff=True)
    registry = Registry.objects.create(
        name="bench",
        url=str(info["url"]),
        auth=Registry.Auth.BASIC,
        username=str(info["user"]),
        password=str(info["password"]),
    )
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)
    repository = seed.MANY_TAGS_REPO
    url = reverse("registry:repository", args=[registry.pk, repository])

    # Load templates, code and connections once on another repository, so "cold" means
    # an empty cache, not a process that has never rendered a page.
    if client.get(reverse("registry:repository", args=[registry.pk, "library/nginx"])).status_code != 200:
        print("warm-up render failed", file=sys.stderr)
        return 1
    # An empty cache without flushing a shared one (Redis also holds the broker's queues).
    settings.REGISTRY_CACHE_NAMESPACE = f"bench-{uuid.uuid4().hex}:"
    http.forget_tokens()
    started = time.monotonic()
    response = client.get(url)
    cold = time.monotonic() - started
    if response.status_code != 200 or response.context is None:
        print(f"cold render failed: HTTP {response.status_code}", file=sys.stderr)
        return 1
    rows = response.context["rows"]
    if len(rows) < 2 or any(row.error or not row.created or not row.platforms for row in rows):
        print("the page lacks details it should show", file=sys.stderr)
        return 1
    tags = [row.tag for row in rows]

    skopeo_s = skopeo(info, repository, tags)

    warm = []
    for _ in range(WARM_RUNS):
        before = http.requests_made
        started = time.monotonic()
        again = client.get(url)
        warm.append(time.monotonic() - started)
        if again.status_code != 200 or http.requests_made != before:
            print("the warm render asked the registry again", file=sys.stderr)
            return 1
    warm_ms = statistics.median(warm) * 1000
    newest = newest_first(client, url, len(tags))
    if newest is None:
        return 1
    first_ms, next_ms, round_trips = newest
    print(f"repository={repository} repository_tags={response.context['tag_count']} page_tags={len(tags)}")
    print(
        f"tags={len(tags)} cold_s={cold:.3f} skopeo_s={skopeo_s:.3f} "
        f"ratio={cold / skopeo_s:.3f} warm_ms={warm_ms:.1f} "
        f"newest_first_first_page_ms={first_ms:.1f} newest_first_next_page_ms={next_ms:.1f} "
        f"newest_first_cold_s={first_ms / 1000:.3f} newest_first_round_trips={round_trips}"
    )
    return 0


def newest_first(client: Any, url: str, page_tags: int) -> tuple[float, float, int] | None:
    """(first page, next page) of newest first in ms, from an empty cache, and the registry
    requests both made; None if wrong."""
    from django.conf import settings

    from registry.clients import http

    settings.REGISTRY_CACHE_NAMESPACE = f"bench-{uuid.uuid4().hex}:"
    http.forget_tokens()
    before = http.requests_made
    started = time.monotonic()
    shell = client.get(url, {"sort": "newest"})
    table = client.get(url, {"sort": "newest", "page": 1}, HTTP_HX_REQUEST="true")
    first = time.monotonic() - started
    if "Sorting" not in shell.content.decode() or table.status_code != 200 or table.context is None:
        print("newest first: no placeholder, or the table failed", file=sys.stderr)
        return None
    started = time.monotonic()
    following = client.get(url, {"sort": "newest", "page": 2})
    second = time.monotonic() - started
    rows = [*table.context["rows"], *following.context["rows"]]
    created = [row.created for row in rows]
    if len(rows) != 2 * page_tags or not all(created) or created != sorted(created, reverse=True):
        print("newest first: the pages are not ordered by date", file=sys.stderr)
        return None
    return first * 1000, second * 1000, http.requests_made - before


if __name__ == "__main__":
    sys.exit(main())
