"""A registry that misbehaves on purpose: a real HTTP server on 127.0.0.1, in a thread.

Each ``mode`` is one way a real registry (or what sits in front of it) goes wrong.
It is a peer, not a mock: the portal's client meets it over real sockets.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

UNKNOWN_TYPE = "application/vnd.example.widget.v1+json"
HUGE = 50 * 1024 * 1024


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes, content_type: str = "application/json", **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in headers.items():
            self.send_header(key.replace("_", "-"), value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, data: object, **headers: str) -> None:
        self._send(status, json.dumps(data).encode(), **headers)

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_DELETE(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        self.server.paths.append(self.path)
        mode = self.server.mode
        base = f"http://127.0.0.1:{self.server.server_address[1]}"
        if self.path.startswith("/token"):
            if mode == "token-refuses":
                self._json(401, {"details": "incorrect username or password"})
            else:
                self._json(200, {"token": "t0ken", "expires_in": 300})
            return
        if mode == "500":
            self._json(500, {"errors": [{"code": "UNKNOWN", "message": "storage backend exploded"}]})
        elif mode == "html":
            self._send(
                200, b"<!doctype html><html><body><h1>Welcome to nginx!</h1></body></html>", "text/html"
            )
        elif mode == "truncated":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "5000")
            self.end_headers()
            self.wfile.write(b'{"repositories": ["a", "b"')
            self.wfile.flush()
            self.close_connection = True
        elif mode == "huge-declared":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(HUGE))
            self.end_headers()
            self._stream_huge()
        elif mode == "huge-chunked":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self._stream_huge(chunked=True)
        elif mode == "redirect":
            port = self.server.server_address[1]
            self._send(302, b"", Location=f"http://localhost:{port}{self.path}")
        elif mode == "slow":
            self.server.release.wait(30)
            self._json(200, {"repositories": []})
        elif mode == "drip":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "100000")
            self.end_headers()
            for _ in range(200):
                if self.server.release.wait(0.2):
                    break
                try:
                    self.wfile.write(b" ")
                    self.wfile.flush()
                except OSError:
                    break
            self.close_connection = True
        elif mode in {"token-refuses", "realm-elsewhere"}:
            realm = f"{base}/token" if mode == "token-refuses" else "http://token.elsewhere.invalid/token"
            self._json(
                401,
                {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]},
                WWW_Authenticate=f'Bearer realm="{realm}",service="misbehaving",scope="registry:catalog:*"',
            )
        elif mode == "unknown-type":
            self._registry_with_unknown_type()
        else:
            self._json(404, {"errors": [{"code": "NOT_FOUND", "message": mode}]})

    def _stream_huge(self, chunked: bool = False) -> None:
        piece = b'{"repositories": [' + b'"x",' * 16000
        sent = 0
        try:
            while sent < HUGE and not self.server.release.is_set():
                data = piece[: HUGE - sent]
                if chunked:
                    self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                else:
                    self.wfile.write(data)
                sent += len(data)
        except OSError:
            pass  # the client stopped reading: what it should do
        self.close_connection = True

    def _registry_with_unknown_type(self) -> None:
        if self.path.startswith("/v2/_catalog"):
            self._json(200, {"repositories": ["things/widget"]})
        elif self.path.startswith("/v2/things/widget/tags/list"):
            self._json(200, {"name": "things/widget", "tags": ["1.0", "<script>alert(1)</script>"]})
        elif self.path.startswith("/v2/things/widget/manifests/"):
            body = json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": UNKNOWN_TYPE,
                    "annotations": {"note": "<script>alert('annotation')</script>"},
                }
            ).encode()
            self._send(200, body, UNKNOWN_TYPE)
        else:
            self._json(200, {})


class Server(ThreadingHTTPServer):
    daemon_threads = True
    mode = "500"

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.release = threading.Event()
        self.paths: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@contextmanager
def misbehaving() -> Iterator[Server]:
    server = Server()
    thread = threading.Thread(target=server.serve_forever, name="misbehaving-registry", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.release.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
