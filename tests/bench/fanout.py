"""One topic's events to many signed-in browsers: `python -m tests.bench.fanout --clients 1000 --daphnes 2`.

Production topology (REDIS_URL, DATABASE_URL): ``--daphnes`` daphne processes, ``--clients``
websocket clients spread over them, all subscribed to one project topic; the benchmark
publishes ``--events`` events (each once every client has the one before, or 10 s passed)
and times publish-to-receipt for every client. Prints ``clients=... daphnes=... events=...
delivered=... p50_ms=... p99_ms=... rss_mb_per_1000=...`` last (delivered is the share of
(client, event) pairs received; rss is what the daphnes grew by, per 1,000 clients).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path


async def run(
    urls: list[str], session_key: str, topic: str, clients: int, events: int, pids: list[int]
) -> dict:
    import websockets

    from portal.live import publish
    from tests.bench._live import rss_mb

    received: list[dict[int, float]] = [{} for _ in range(clients)]
    ready = asyncio.Event()
    subscribed = 0
    sockets = []

    async def client(i: int) -> None:
        nonlocal subscribed
        url = urls[i % len(urls)]
        headers = {"Origin": url, "Cookie": f"sessionid={session_key}"}
        ws = await websockets.connect(
            url.replace("http", "ws") + "/ws/live/", additional_headers=headers, open_timeout=60
        )
        sockets.append(ws)
        await ws.send(json.dumps({"subscribe": [topic]}))
        reply = json.loads(await ws.recv())
        if reply.get("subscribed") != [topic]:
            raise RuntimeError(f"subscription refused: {reply}")
        subscribed += 1
        if subscribed == clients:
            ready.set()
        async for frame in ws:
            message = json.loads(frame)
            data = message.get("data") or {}
            if "seq" in data:
                received[i][data["seq"]] = time.time() - data["at"]

    rss_before = sum(rss_mb(pid) for pid in pids)
    # Connect in waves of 100, as a storm of 1,000 at once is the other benchmark's business.
    tasks = []
    for start in range(0, clients, 100):
        tasks += [asyncio.ensure_future(client(i)) for i in range(start, min(clients, start + 100))]
        await asyncio.sleep(0)  # yield so the wave's handshakes start before the next wave
    await asyncio.wait_for(ready.wait(), 300)
    rss_after = sum(rss_mb(pid) for pid in pids)
    for seq in range(events):
        await asyncio.to_thread(publish, topic, data={"seq": seq, "at": time.time()})
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and sum(seq in r for r in received) < clients:
            await asyncio.sleep(0.01)
    for ws in sockets:
        await ws.close()
    for task in tasks:
        task.cancel()
    latencies = sorted(ms * 1000 for r in received for ms in r.values())
    return {
        "delivered": len(latencies) / (clients * events),
        "p50_ms": statistics.median(latencies) if latencies else float("nan"),
        "p99_ms": latencies[min(len(latencies) - 1, round(0.99 * len(latencies)) - 1)]
        if latencies
        else float("nan"),
        "rss_mb_per_1000": (rss_after - rss_before) * 1000 / clients,
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--daphnes", type=int, default=2)
    parser.add_argument("--events", type=int, default=20)
    args = parser.parse_args()
    from tests.bench._live import portal
    from tests.lab import common

    with tempfile.TemporaryDirectory(prefix="bench-fanout-", dir=common.REPO / "var") as tmp:
        try:
            with portal(args.daphnes, Path(tmp)) as p:
                topic = f"events:project:{p.project_id}"
                figures = asyncio.run(run(p.urls, p.session_key, topic, args.clients, args.events, p.pids))
        except (RuntimeError, TimeoutError, OSError) as exc:
            print(f"could not measure: {exc}", file=sys.stderr)
            return 1
    figures_text = " ".join(
        [
            f"clients={args.clients} daphnes={args.daphnes} events={args.events}",
            f"delivered={figures['delivered']:.3f}",
            f"p50_ms={figures['p50_ms']:.0f} p99_ms={figures['p99_ms']:.0f}",
            f"rss_mb_per_1000={figures['rss_mb_per_1000']:.0f}",
        ]
    )
    print(figures_text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
