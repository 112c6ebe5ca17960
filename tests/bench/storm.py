"""A connection storm: `python -m tests.bench.storm --clients 200`.

Production topology (REDIS_URL, DATABASE_URL), one daphne: ``--clients`` signed-in
websockets connect at once and subscribe to a project topic, then all leave. Counts how
each ended (subscribed, or closed with which code), the Redis connections the daphne holds
before and after, and the topic subscriptions left in Redis once every client has gone.
Prints ``clients=... subscribed=... refused_1011=... refused_other=... redis_conns_before=...
redis_conns_after=... stale_members=...`` last.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path


def redis_clients() -> int:
    import redis

    return int(redis.Redis.from_url(os.environ["REDIS_URL"]).info("clients")["connected_clients"])


def group_subscriptions() -> int:
    """Group channels somebody is still subscribed to (the pub/sub layer's members)."""
    import redis

    return len(redis.Redis.from_url(os.environ["REDIS_URL"]).pubsub_channels("portal__group__live.*"))


async def storm(url: str, session_key: str, topic: str, clients: int) -> Counter[str]:
    import websockets

    outcomes: Counter[str] = Counter()
    gate = asyncio.Event()
    done = asyncio.Event()

    async def client() -> None:
        headers = {"Origin": url, "Cookie": f"sessionid={session_key}"}
        await gate.wait()
        try:
            async with websockets.connect(
                url.replace("http", "ws") + "/ws/live/", additional_headers=headers
            ) as ws:
                await ws.send(json.dumps({"subscribe": [topic]}))
                reply = json.loads(await asyncio.wait_for(ws.recv(), 60))
                outcomes["subscribed" if reply.get("subscribed") == [topic] else "refused_topic"] += 1
                await done.wait()  # every client holds its socket until all have answered
        except websockets.ConnectionClosed as exc:
            outcomes[f"closed_{exc.rcvd.code if exc.rcvd else 'none'}"] += 1
        except websockets.InvalidStatus as exc:
            outcomes[f"http_{exc.response.status_code}"] += 1

    tasks = [asyncio.ensure_future(client()) for _ in range(clients)]
    gate.set()
    while sum(outcomes.values()) < clients and not all(t.done() for t in tasks):
        await asyncio.sleep(0.05)
    done.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    return outcomes


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=200)
    args = parser.parse_args()
    from tests.bench._live import portal
    from tests.lab import common

    with tempfile.TemporaryDirectory(prefix="bench-storm-", dir=common.REPO / "var") as tmp:
        try:
            with portal(1, Path(tmp)) as p:
                topic = f"events:project:{p.project_id}"
                before = redis_clients()
                outcomes = asyncio.run(storm(p.urls[0], p.session_key, topic, args.clients))
                after = redis_clients()
                # Once every socket has gone its subscriptions must go too (asked of Redis,
                # after the daphne had its moment to notice the closes).
                with contextlib.suppress(TimeoutError):  # then reported as stale_members
                    common.wait_until(
                        lambda: group_subscriptions() == 0, timeout=10, what="no subscription left"
                    )
                stale = group_subscriptions()
        except (RuntimeError, TimeoutError, OSError) as exc:
            print(f"could not measure: {exc}", file=sys.stderr)
            return 1
    other = sum(n for k, n in outcomes.items() if k not in ("subscribed", "closed_1011"))
    print(
        f"clients={args.clients} subscribed={outcomes['subscribed']} refused_1011={outcomes['closed_1011']} "
        f"refused_other={other} redis_conns_before={before} redis_conns_after={after} stale_members={stale}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
