"""A shell in a running container: ``docker exec`` with a TTY, its bytes pumped both ways.

The exec's hijacked connection is a plain socket, a TLS socket or an SSH channel, depending on
the engine's endpoint. One thread owns it: OpenSSL does not allow a read and a write on one TLS
connection from two threads at once, so input is queued and written by the thread that reads,
which waits on the socket and on a wake-up pipe together.

The engine does not end an exec when its connection closes (moby#9098): a shell left behind
would live until the container stops. Each session's processes carry a random variable in their
environment, and ``end`` hangs them up (SIGHUP, as a terminal that closes does, then SIGKILL) by
finding that variable in ``/proc`` with a second, short exec."""

from __future__ import annotations

import contextlib
import os
import secrets
import selectors
import shlex
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import docker.errors

from portal.refused import Refused

#: The shells a person picks from; anything else is a command of their own.
SHELLS = ("/bin/sh", "/bin/bash")
#: What the engine's runtime exits with when the program is not there (126: not executable).
NOT_FOUND_EXIT_CODES = frozenset({126, 127})
#: The environment variable that marks a session's processes (see the module's docstring).
MARK = "PORTAL_CONSOLE"
#: How long a hung-up shell gets before it is killed.
HANGUP_GRACE_SECONDS = 3.0
#: Seconds between tries to write input the connection has no room for yet.
RETRY = 0.02
#: Bytes read at a time: a screenful is a few kilobytes, a ``cat`` of a large file fills these.
READ_SIZE = 65536
#: Nothing of these means "try again later" on a non-blocking socket, SSL or SSH channel.
_WOULD_BLOCK = (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError, socket.timeout)


def command_of(shell: str, command: str = "") -> list[str]:
    """The argv to run: one of SHELLS, or the person's own command split as a shell would."""
    if command.strip():
        try:
            argv = shlex.split(command)
        except ValueError as exc:
            raise Refused(f"The command cannot be read: {exc}.") from None
        if not argv:
            raise Refused("Give a command, or pick a shell.")
        return argv
    if shell not in SHELLS:
        raise Refused(f"Pick one of {', '.join(SHELLS)} or give a command.")
    return [shell]


def _raw(stream: Any) -> Any:
    """The object to read and write: the SDK hands a plain socket wrapped in a SocketIO."""
    return getattr(stream, "_sock", stream)


@dataclass
class ExecSession:
    """One ``docker exec -it``: open with ``start``, then ``pump`` on a thread of its own."""

    sdk: Any
    container_id: str
    argv: list[str]
    exec_id: str = ""
    mark: str = field(default_factory=lambda: secrets.token_hex(16))
    bytes_out: int = 0
    _sock: Any = None
    _pending: bytearray = field(default_factory=bytearray)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _closing: bool = False
    _wake_r: int = -1
    _wake_w: int = -1

    def start(self, cols: int = 80, rows: int = 24) -> None:
        """Create and start the exec. Refused, with why, when the container does not run."""
        try:
            state = self.sdk.api.inspect_container(self.container_id)["State"]
        except docker.errors.NotFound:
            raise Refused("The engine has no such container.", status=404) from None
        if not state.get("Running") or state.get("Paused"):
            raise Refused(
                f"The container is {state.get('Status', 'not running')}: a console needs it running."
            )
        try:
            created = self.sdk.api.exec_create(
                self.container_id,
                self.argv,
                stdin=True,
                tty=True,
                environment={"TERM": "xterm-256color", MARK: self.mark},
            )
        except docker.errors.APIError as exc:
            raise Refused(f"The engine refused the console: {exc.explanation or exc}.") from None
        self.exec_id = created["Id"]
        self._sock = _raw(self.sdk.api.exec_start(self.exec_id, tty=True, socket=True))
        self._sock.setblocking(False)
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self.resize(cols, rows)

    def resize(self, cols: int, rows: int) -> None:
        """The terminal's size, as the browser's window now has it (bounded: a forged frame)."""
        cols, rows = max(1, min(int(cols), 1000)), max(1, min(int(rows), 1000))
        # A resize of an exec that has just ended is refused by the engine: nothing to tell.
        with contextlib.suppress(docker.errors.APIError):
            self.sdk.api.exec_resize(self.exec_id, height=rows, width=cols)

    def write(self, data: bytes) -> None:
        """Queue keystrokes for the pump's thread (any thread may call this)."""
        with self._lock:
            self._pending += data
        self._wake()

    def close(self) -> None:
        """Ask the pump to stop; ``end`` then hangs the shell up."""
        self._closing = True
        self._wake()

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._wake_w, b"x")

    def pump(self, on_output: Callable[[bytes], None]) -> None:
        """Move bytes until the program ends or ``close`` is called; ``on_output`` gets what the
        program prints, on this thread (it may block: that is the backpressure)."""
        # An SSH channel's descriptor only ever signals data to read, never room to write: input
        # is written as soon as it is queued, and retried every RETRY seconds while it would block.
        selector = selectors.DefaultSelector()
        selector.register(self._sock, selectors.EVENT_READ)
        selector.register(self._wake_r, selectors.EVENT_READ)
        try:
            while not self._closing:
                self._flush()
                with self._lock:
                    writing = bool(self._pending)
                for key, _ in selector.select(timeout=RETRY if writing else 5.0):
                    if key.fileobj == self._wake_r:
                        with contextlib.suppress(BlockingIOError):
                            os.read(self._wake_r, 4096)
                if not self._drain(on_output):
                    return
        finally:
            selector.close()

    def _flush(self) -> None:
        with self._lock:
            data = bytes(self._pending)
        if not data:
            return
        try:
            sent = self._sock.send(data)
        except _WOULD_BLOCK:
            return
        with self._lock:
            del self._pending[:sent]

    def _drain(self, on_output: Callable[[bytes], None]) -> bool:
        """Read all there is; False once the program's side has closed."""
        while True:
            try:
                chunk = self._sock.recv(READ_SIZE)
            except _WOULD_BLOCK:
                return True
            except OSError:
                return False
            if not chunk:
                return False
            self.bytes_out += len(chunk)
            on_output(chunk)

    def exit_code(self) -> int | None:
        """The program's exit code once it has ended (None while it runs or if unknown)."""
        try:
            found = self.sdk.api.exec_inspect(self.exec_id)
        except docker.errors.APIError:
            return None
        return None if found.get("Running") else found.get("ExitCode")

    def running(self) -> bool:
        try:
            return bool(self.sdk.api.exec_inspect(self.exec_id).get("Running"))
        except docker.errors.APIError:
            return False

    def end(self) -> None:
        """Close the connection, then make sure nothing of the session runs on in the container
        (the engine counts the exec as running while its connection is open)."""
        with contextlib.suppress(OSError):
            self._sock.close()
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._wake_r = self._wake_w = -1
        if not self.exec_id or not self.running():
            return
        self._signal("HUP")
        deadline = time.monotonic() + HANGUP_GRACE_SECONDS
        while self.running() and time.monotonic() < deadline:
            time.sleep(0.1)  # polling the engine's state: it pushes nothing here
        if self.running():
            self._signal("KILL")

    def _signal(self, signal: str) -> None:
        """Send ``signal`` to every process of the session (the shell and what it started)."""
        script = (
            'for d in /proc/[0-9]*; do grep -q "$1" "$d/environ" 2>/dev/null'
            ' && kill -"$2" "${d#/proc/}" 2>/dev/null; done; true'
        )
        try:
            cleanup = self.sdk.api.exec_create(
                self.container_id, ["/bin/sh", "-c", script, "hangup", f"{MARK}={self.mark}", signal]
            )
            self.sdk.api.exec_start(cleanup["Id"])
        except docker.errors.APIError:
            # A container with no /bin/sh or grep: its own stop will end the session.
            return
