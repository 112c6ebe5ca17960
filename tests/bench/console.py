"""A container console through daphne: `python -m tests.bench.console [--keys 200]`.

Production topology (DATABASE_URL and REDIS_URL): one daphne serving the portal, one lab TLS
engine, a busybox container, and a websocket client as the browser's terminal. Measures the
keystroke-to-echo round trip (a key sent as ``{"input"}`` until the terminal's echo of it arrives,
``--keys`` times) and the throughput of ``cat`` of a 10 MiB text file (bytes the terminal receives
per second). Prints ``keys=... rtt_p50_ms=... rtt_p95_ms=... cat_bytes=... cat_mb_s=...`` last.
Targets (issue 17): p95 <= 50 ms on loopback; >= 5 MB/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from contextlib import closing
from pathlib import Path
from typing import Any

SIZE = 10 * 1024 * 1024
#: Ends the cat; typed with quotes in between, so only the output (not the echo) holds it whole.
END = b"CONSOLE-BENCH-END"


async def measure(url: str, session_key: str, path: str, keys: int) -> dict[str, Any]:
    import websockets

    headers = {"Origin": url, "Cookie": f"sessionid={session_key}"}
    async with websockets.connect(url.replace("http", "ws", 1) + path, additional_headers=headers) as ws:

        async def until(needle: bytes) -> int:
            """Bytes received until ``needle`` shows (a needle split across frames counts too)."""
            seen, tail = 0, b""
            while True:
                frame = await asyncio.wait_for(ws.recv(), timeout=60)
                if isinstance(frame, str):
                    raise RuntimeError(f"the console ended: {frame}")
                seen += len(frame)
                tail = (tail + frame)[-len(needle) - 4096 :]
                if needle in tail:
                    return seen

        await until(b"# ")
        rtts = []
        for i in range(keys):
            key = "abcdefghijklmnopqrstuvwxyz"[i % 26]
            started = time.perf_counter()
            await ws.send(json.dumps({"input": key}))
            await until(key.encode())
            rtts.append((time.perf_counter() - started) * 1000)
        await ws.send(json.dumps({"input": "\x15"}))  # Ctrl-U: the typed line is dropped
        await ws.send(json.dumps({"input": f"cat /tmp/big; echo {END[:8].decode()}''{END[8:].decode()}\r"}))
        started = time.perf_counter()
        received = await until(END)
        seconds = time.perf_counter() - started
    quantiles = statistics.quantiles(rtts, n=20)
    return {
        "keys": keys,
        "rtt_p50_ms": round(statistics.median(rtts), 2),
        "rtt_p95_ms": round(quantiles[18], 2),
        "cat_bytes": received,
        "cat_mb_s": round(received / seconds / 1e6, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench.console", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--keys", type=int, default=200)
    args = parser.parse_args(argv)

    from tests.bench._live import portal
    from tests.lab import common, engines

    with tempfile.TemporaryDirectory(prefix="console-bench-", dir=common.REPO / "var") as tmp:
        try:
            info = engines.up(Path(tmp), plain=0, tls=1)[0]
            with portal(1, Path(tmp)) as served:
                from portal.models import Membership, Role
                from tests.hosts.conftest import trusted_host

                Membership.objects.filter(project_id=served.project_id).update(role=Role.PROVISIONER)
                host = trusted_host(
                    info, Membership.objects.get(project_id=served.project_id).project, "bench"
                )
                busybox = next(ref for ref in info["images"] if ref.startswith("lab/busybox:"))
                with closing(engines.connect(info)) as sdk:
                    container = sdk.containers.run(
                        busybox, engines.SERVE_CMD, detach=True, network_mode="none"
                    )
                    # Text, 64 characters a line, as a log or a config would be.
                    container.exec_run(["sh", "-c", f"yes {'x' * 63} | head -c {SIZE} > /tmp/big"])
                    figures = asyncio.run(
                        measure(
                            served.urls[0],
                            served.session_key,
                            f"/ws/console/{host.pk}/{container.id}/",
                            args.keys,
                        )
                    )
                    container.remove(force=True)
        finally:
            engines.down(Path(tmp))
    print(" ".join(f"{key}={value}" for key, value in figures.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
