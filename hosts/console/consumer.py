"""``/ws/console/HOST/CONTAINER/``: a browser's terminal wired to a shell in a container.

Frames, browser to portal: ``{"input": "..."}`` (keystrokes, a paste) and ``{"resize": [cols,
rows]}``. Portal to browser: binary frames, the terminal's bytes as the program wrote them, and
text frames for what the page says around the terminal: ``{"error": "..."}`` (refused, nothing
started) and ``{"closed": "..."}`` (why the session ended).

Only a Provisioner of the host's project may open one (``host.operate``), checked again every
few seconds while it lasts: a person removed from the project loses the shell too. The start and
the end are in the audit trail, never what was typed or shown."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from hosts.console.session import NOT_FOUND_EXIT_CODES, ExecSession, command_of
from hosts.fleet import engine, services
from hosts.models import Host
from portal import access, audit
from portal.refused import Refused

log = logging.getLogger(__name__)

#: Close codes (4000+: ours), as live.js's: the person may not; the request was refused.
CLOSE_NOT_ALLOWED = 4403
CLOSE_REFUSED = 4409
#: How often the session re-checks its person's access and its idleness.
RECHECK_SECONDS = 5.0
#: A paste is at most this many characters a frame; xterm.js splits nothing larger.
MAX_INPUT_CHARS = 65_536
#: Consoles one process holds (each is a thread and an engine connection).
MAX_SESSIONS = 200

_sessions = 0


def idle_seconds() -> float:
    return float(settings.CONSOLE_IDLE_SECONDS)


@database_sync_to_async
def _operable_host(user: Any, host_id: int) -> Host | None:
    host = Host.objects.select_related("project").filter(pk=host_id, enabled=True).first()
    if host is None or not access.can(user, "host.operate", host.project_id):
        return None
    return host


@database_sync_to_async
def _still_allowed(user: Any, project_id: int) -> bool:
    return access.can(user, "host.operate", project_id)


@database_sync_to_async
def _record_start(host: Host, user: Any, after: dict[str, Any]) -> None:
    audit.record("container.console_start", obj=host, project=host.project, actor=user, after=after)


@database_sync_to_async
def _record_end(host: Host, user: Any, after: dict[str, Any]) -> None:
    audit.record("container.console_end", obj=host, project=host.project, actor=user, after=after)


def _query(scope: dict[str, Any]) -> dict[str, str]:
    parsed = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    return {key: values[0] for key, values in parsed.items()}


def _open(host: Host, container_id: str, argv: list[str], cols: int, rows: int) -> ExecSession:
    try:
        sdk = engine.client_for(host, timeout=30)
    except Exception as exc:  # noqa: BLE001 - told to the person
        raise Refused(f"{host}: {engine.describe_error(exc, host.docker_url)}", status=502) from None
    session = ExecSession(sdk, container_id, argv)
    try:
        session.start(cols, rows)
    except Refused:
        sdk.close()
        raise
    except Exception as exc:  # noqa: BLE001 - an engine that failed mid-way: told to the person
        sdk.close()
        raise Refused(f"{host}: {engine.describe_error(exc, host.docker_url)}", status=502) from None
    return session


class ConsoleConsumer(AsyncWebsocketConsumer):
    session: ExecSession | None = None

    async def connect(self) -> None:
        global _sessions
        self.user = self.scope.get("user")
        if not access.is_signed_in(self.user):
            await self.close()
            return
        kwargs = self.scope["url_route"]["kwargs"]
        query = _query(self.scope)
        await self.accept()
        host = await _operable_host(self.user, int(kwargs["host"]))
        if host is None:
            await self._refuse("You may not open a console on this host.", CLOSE_NOT_ALLOWED)
            return
        if _sessions >= MAX_SESSIONS:
            await self._refuse("Too many consoles are open on this portal: try again later.", CLOSE_REFUSED)
            return
        self.host = host
        try:
            self.container_id = services.container_id_or_404(kwargs["container"])
            argv = command_of(query.get("shell", "/bin/sh"), query.get("command", ""))
            cols, rows = int(query.get("cols", "80")), int(query.get("rows", "24"))
        except Exception as exc:  # noqa: BLE001 - a forged address: refused, not a traceback
            await self._refuse(getattr(exc, "message", "No such container."), CLOSE_REFUSED)
            return
        _sessions += 1
        self.counted = True
        self.started = time.monotonic()
        self.last_input = self.started
        self.keystrokes = 0
        self.ending = ""
        try:
            self.session = await asyncio.to_thread(_open, host, self.container_id, argv, cols, rows)
        except Refused as exc:
            await self._refuse(exc.message, CLOSE_REFUSED)
            return
        await _record_start(
            host,
            self.user,
            {"container": self.container_id[:12], "command": " ".join(argv)},
        )
        loop = asyncio.get_running_loop()
        self.pump_done = asyncio.Event()
        self.pump_thread = threading.Thread(
            target=self._pump, args=(loop,), name=f"console-{self.container_id[:12]}", daemon=True
        )
        self.pump_thread.start()
        self.watchdog = asyncio.create_task(self._watch())

    async def _refuse(self, message: str, code: int) -> None:
        await self.send(text_data=json.dumps({"error": message}))
        await self.close(code=code)

    def _pump(self, loop: asyncio.AbstractEventLoop) -> None:
        """The session's thread: the program's output to the browser, one frame at a time (the
        wait for each send is the backpressure a fast ``cat`` needs)."""
        assert self.session is not None

        def forward(chunk: bytes) -> None:
            asyncio.run_coroutine_threadsafe(self.send(bytes_data=chunk), loop).result(timeout=60)

        try:
            self.session.pump(forward)
        except Exception:  # the browser is told the session ended, whatever broke
            log.warning("console of %s broke", self.container_id[:12], exc_info=True)
        loop.call_soon_threadsafe(self.pump_done.set)

    async def _watch(self) -> None:
        """Ends the session when the program ends, the person leaves it idle, or loses access."""
        assert self.session is not None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.pump_done.wait(), timeout=RECHECK_SECONDS)
            if self.pump_done.is_set():
                if not self.ending:
                    await self._program_ended()
                return
            if time.monotonic() - self.last_input > idle_seconds():
                minutes = round(idle_seconds() / 60)
                await self._end(f"Closed after {minutes} minutes without a keystroke.", 1000, "idle")
                return
            if not await _still_allowed(self.user, self.host.project_id):
                await self._end("You may no longer open consoles on this host.", CLOSE_NOT_ALLOWED, "access")
                return

    async def _program_ended(self) -> None:
        assert self.session is not None
        code = await asyncio.to_thread(self.session.exit_code)
        if code in NOT_FOUND_EXIT_CODES and self.keystrokes == 0:
            # The runtime's own words are already on the terminal; this says what to do.
            what = " ".join(self.session.argv)
            message = f"The container cannot run {what} (exit {code}): pick another shell or command."
        else:
            message = "The program ended." if code is None else f"The program ended (exit {code})."
        await self._end(message, 1000, "exited")

    async def _end(self, message: str, code: int, reason: str) -> None:
        self.ending = reason
        await self.send(text_data=json.dumps({"closed": message}))
        await self.close(code=code)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.session is None:
            return
        try:
            frame = json.loads(text_data or "")
            if not isinstance(frame, dict):
                raise ValueError(frame)
        except ValueError:
            await self._end("The page sent what a console does not understand.", 4008, "bad frame")
            return
        if isinstance(frame.get("input"), str) and len(frame["input"]) <= MAX_INPUT_CHARS:
            self.keystrokes += 1
            self.last_input = time.monotonic()
            self.session.write(frame["input"].encode())
        elif isinstance(frame.get("resize"), list) and len(frame["resize"]) == 2:
            cols, rows = frame["resize"]
            if isinstance(cols, int) and isinstance(rows, int):
                await asyncio.to_thread(self.session.resize, cols, rows)

    async def disconnect(self, code: int) -> None:
        global _sessions
        if not getattr(self, "counted", False):
            return
        self.counted = False
        _sessions -= 1
        if self.session is None:
            return
        self.session.close()
        watchdog = getattr(self, "watchdog", None)
        if watchdog is not None and not watchdog.done():
            watchdog.cancel()
        await asyncio.to_thread(self._finish)
        await _record_end(
            self.host,
            self.user,
            {
                "container": self.container_id[:12],
                "seconds": round(time.monotonic() - self.started),
                "reason": self.ending or "closed",
            },
        )

    def _finish(self) -> None:
        assert self.session is not None
        self.pump_thread.join(timeout=30)
        try:
            self.session.end()
        finally:
            self.session.sdk.close()
