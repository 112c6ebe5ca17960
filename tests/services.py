"""Exit 0 when the PostgreSQL and Redis URLs given answer, else say which did not."""

from __future__ import annotations

import sys


def main(database_url: str, redis_url: str) -> int:
    import psycopg
    import redis

    failures = []
    try:
        psycopg.connect(database_url, connect_timeout=3).close()
    except psycopg.Error as exc:
        failures.append(f"PostgreSQL at {database_url}: {str(exc).strip().splitlines()[0]}")
    try:
        redis.Redis.from_url(redis_url, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        failures.append(f"Redis at {redis_url}: {exc}")
    for failure in failures:
        print(failure, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
