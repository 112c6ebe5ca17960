"""A Redis of the test's own on a spare port, to stop and start again (never the machine's)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import redis

from tests.lab.common import free_port, wait_until


class RedisServer:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (make test installs it: Debian's redis-server)")
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=(self.directory / "redis.log").open("ab"),
            stderr=subprocess.STDOUT,
        )
        wait_until(self.answers, timeout=20, what=f"redis-server on port {self.port}")

    def answers(self) -> bool:
        return bool(redis.Redis.from_url(self.url, socket_connect_timeout=1).ping())

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=20)
            self.process = None
