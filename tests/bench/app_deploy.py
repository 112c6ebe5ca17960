"""Deploying the three-tier template: the portal over two lab engines against ``docker-compose
up -d`` of the same file on one (part of ``python -m tests.bench.apps``).

The portal's deploy is ``hosts.applications.engine_deploy.deploy`` (what the deploy task runs,
without the database around it): db on the first engine, app and web on the second. Compose
(Debian's docker-compose) runs the same Compose file on the first engine. Both wait for the db's
health check before starting the app. The images are already on the engines (the lab loads them),
so neither pulls: this measures creating, starting and waiting, not the pulls the portal runs in
parallel across hosts. Each side runs ``runs`` times and removes what it made in between; the
figures are medians.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from tests.lab import common, engines

TIER = """\
services:
  web:
    image: {busybox}
    command: ["sh", "-c", "echo hello > /tmp/index.html && exec httpd -f -p 80 -h /tmp"]
    ports: ["127.0.0.1:{port}:80"]
    depends_on: [app]
  app:
    image: {busybox}
    command: ["sleep", "3600"]
    depends_on:
      db: {{condition: service_healthy}}
  db:
    image: {busybox}
    command: ["sh", "-c", "touch /tmp/ok; exec sleep 3600"]
    healthcheck: {{test: ["CMD", "test", "-f", "/tmp/ok"], interval: 1s, retries: 30}}
    volumes: [data:/data]
volumes:
  data: {{}}
"""


def _portal(infos: list[dict[str, Any]], source: str, runs: int) -> float:
    from hosts.applications import engine_deploy

    model = yaml.safe_load(source)
    placements = [("db", 1, 1), ("app", 1, 2), ("web", 1, 2)]
    times = []
    clients = {1: engines.connect(infos[0]), 2: engines.connect(infos[1])}
    try:
        for run in range(runs):
            project = f"benchportal{run}"
            started = time.monotonic()
            engine_deploy.deploy(project, model, placements, clients, lambda progress: None)
            times.append(time.monotonic() - started)
            engine_deploy.remove(project, clients, lambda progress: None, volumes=True)
    finally:
        for sdk in clients.values():
            sdk.close()
    return statistics.median(times)


def _compose(info: dict[str, Any], source: str, runs: int) -> float:
    binary = shutil.which("docker-compose")
    if binary is None:
        raise RuntimeError("docker-compose is not installed (make system-packages)")
    env = {**os.environ, "DOCKER_HOST": info["url"]}
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "compose.yaml"
        path.write_text(source)
        for run in range(runs):
            project = f"benchcompose{run}"
            started = time.monotonic()
            subprocess.run(
                [binary, "-p", project, "-f", str(path), "up", "-d"], env=env, check=True, capture_output=True
            )
            times.append(time.monotonic() - started)
            subprocess.run(
                [binary, "-p", project, "-f", str(path), "down", "-v"],
                env=env,
                check=True,
                capture_output=True,
            )
    return statistics.median(times)


def measure(runs: int = 3) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="apps-bench-", dir=common.REPO / "var") as tmp:
        infos = engines.up(Path(tmp), plain=2, tls=0)
        try:
            busybox = next(ref for ref in infos[0]["images"] if ref.startswith("lab/busybox:"))
            source = TIER.format(busybox=busybox, port=common.free_port())
            deploy_s = _portal(infos, source, runs)
            compose_s = _compose(infos[0], source, runs)
        finally:
            engines.down(Path(tmp))
    return {
        "deploy_s": round(deploy_s, 2),
        "compose_s": round(compose_s, 2),
        "ratio": round(deploy_s / compose_s, 2),
    }
