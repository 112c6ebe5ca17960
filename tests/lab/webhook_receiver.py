"""A webhook receiver for the lab: stdlib http.server in a process of its own on a loopback
port. Every POST is recorded (``workdir/requests/NNNN.json``: path, headers, body, whether
its ``X-Portal-Signature`` checks out with the secret it was given, what it answered).

Told through ``/_control/``: ``POST /_control/secret`` (the body is the channel's secret) and
``POST /_control/fail`` (the body is N: answer 500 to the next N requests).
``python -m tests.lab.webhook_receiver --port P --dir D`` runs it; ``up``/``down`` as every peer.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

from tests.lab import common

NAME = "webhooks"


class _State:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.lock = threading.Lock()
        self.secret = b""
        self.fail_next = 0
        self.count = 0


def _handler(state: _State) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return None

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _answer(self, status: int, text: str) -> None:
            data = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            body = self._body()
            if self.path == "/_control/secret":
                with state.lock:
                    state.secret = body
                return self._answer(200, "ok")
            if self.path == "/_control/fail":
                with state.lock:
                    state.fail_next = int(body or b"0")
                return self._answer(200, "ok")
            with state.lock:
                expected = "sha256=" + hmac.new(state.secret, body, hashlib.sha256).hexdigest()
                signed = bool(state.secret) and hmac.compare_digest(
                    expected, self.headers.get("X-Portal-Signature", "")
                )
                failing = state.fail_next > 0
                state.fail_next -= 1 if failing else 0
                state.count += 1
                number = state.count
            status, text = (500, "lab receiver: failing on purpose") if failing else (200, "received")
            record = {
                "path": self.path,
                "headers": dict(self.headers.items()),
                "body": body.decode(errors="replace"),
                "signature_ok": signed,
                "answered": status,
            }
            tmp = state.directory / f".{number:04d}.tmp"
            tmp.write_text(json.dumps(record))
            tmp.rename(state.directory / f"{number:04d}.json")
            self._answer(status, text)

    return Handler


def serve(port: int, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler(_State(directory)))
    server.serve_forever()


def up(workdir: Path) -> dict[str, Any]:
    workdir.mkdir(parents=True, exist_ok=True)
    directory = workdir / "requests"
    directory.mkdir(exist_ok=True)
    port = common.serve_python(
        NAME, "tests.lab.webhook_receiver", workdir, ["--dir", str(directory)], "the lab webhook receiver"
    )
    return {"url": f"http://127.0.0.1:{port}", "dir": str(directory)}


def down(workdir: Path) -> None:
    common.stop_spawned(workdir, NAME)


def received(info: dict[str, Any]) -> list[dict[str, Any]]:
    """The requests recorded so far, oldest first."""
    return [json.loads(p.read_text()) for p in sorted(Path(info["dir"]).glob("*.json"))]


def forget(info: dict[str, Any]) -> None:
    """Start a test with no recorded request (the receiver is the session's)."""
    for path in Path(info["dir"]).glob("*.json"):
        path.unlink()


def set_secret(info: dict[str, Any], secret: str) -> None:
    requests.post(info["url"] + "/_control/secret", data=secret.encode(), timeout=5).raise_for_status()


def fail_next(info: dict[str, Any], count: int) -> None:
    requests.post(info["url"] + "/_control/fail", data=str(count).encode(), timeout=5).raise_for_status()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", type=Path, required=True)
    arguments = parser.parse_args()
    serve(arguments.port, arguments.dir)
