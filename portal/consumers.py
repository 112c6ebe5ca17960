"""The one websocket consumer: subscribe to topics, receive their events."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Callable
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.contrib.auth import get_user_model
from django.db import DatabaseError, InterfaceError, OperationalError, connection
from django.utils.module_loading import import_string

from . import access, replay
from .live import access_group, bind_consumer_loop, group_name

#: A page subscribes to a handful of topics; more is a misbehaving client.
MAX_TOPICS = 50
#: Close code when the user may no longer see what the socket carries (4000+: ours).
CLOSE_ACCESS_GONE = 4403
#: How often a running stream (logs, stats) re-checks its user's access.
FOLLOWER_RECHECK_SECONDS = 5.0
#: Close code for "try again later": this process is at capacity, or the channel layer
#: (Redis) did not answer; live.js backs off longer on it. RFC 6455's own 1013 says the
#: same, but daphne (autobahn) lets a server close only with 1000 or 3000-4999, so
#: 4000 + 1013's last digits, like CLOSE_ACCESS_GONE.
CLOSE_TRY_LATER = 4013
#: Close code for a client that keeps sending what the protocol is not (1008's meaning).
CLOSE_POLICY = 4008
#: A subscribe frame is a few kilobytes at most (MAX_TOPICS short names).
MAX_FRAME_CHARS = 16_384
#: Malformed frames a socket may send (each answered with an error) before it is closed.
MAX_BAD_FRAMES = 5
#: A replay position as replay.mark/record make them: "milliseconds-sequence".
POSITION = re.compile(r"\d{1,20}-\d{1,20}")
#: Sockets one process serves; more are closed with CLOSE_TRY_LATER, not left to fail.
MAX_SOCKETS = 5_000

log = logging.getLogger(__name__)


def _retrying_once(ask: Callable[[], bool]) -> bool:
    """``ask`` on this thread's database connection, again on a fresh one if PostgreSQL
    dropped the first (a restart kills pooled connections; the pool's check at checkout
    cannot see a connection die between that check and the query)."""
    try:
        return ask()
    except (OperationalError, InterfaceError):
        connection.close()
        return ask()


class _BadFrameLog:
    """Malformed frames are counted and logged once a minute, not a traceback each:
    a signed-in user could otherwise fill the logs."""

    count = 0
    since = 0.0

    @classmethod
    def note(cls, user_id: Any, what: str) -> None:
        cls.count += 1
        now = time.monotonic()
        if now - cls.since >= 60:
            log.warning(
                "%d malformed websocket frame(s) in the last minute (latest: user %s, %s)",
                cls.count,
                user_id,
                what,
            )
            cls.count, cls.since = 0, now


#: Sockets open in this process.
_open_sockets = 0

#: Topics whose subscription starts a stream for this connection alone, ended when it
#: closes (a container's logs and stats): pattern -> "module.function(user, topic)", an
#: async iterator of ``data`` dicts. The function checks access to what it streams itself.
FOLLOWERS: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(r"project:\d+:host:\d+:container:[0-9a-f]{12,64}:(logs:\d{1,5}|stats)"),
        "hosts.fleet.watch.follow",
    ),
]


class LiveConsumer(AsyncJsonWebsocketConsumer):
    """``/ws/live/``: the browser sends ``{"subscribe": [topics]}`` and gets each
    topic's events as ``{"topic", "html", "data"}``. Anonymous connections are
    refused at the handshake; each topic is checked with portal.access."""

    async def connect(self) -> None:
        global _open_sockets
        self.topics: set[str] = set()
        self.groups: set[str] = set()
        self.followers: set[asyncio.Task[None]] = set()
        self.bad_frames = 0
        #: Per topic, the position of the last event replayed (to drop its live twin).
        self.seen: dict[str, tuple[int, int]] = {}
        self.counted = False
        if not access.is_signed_in(self.scope.get("user")):
            await self.close()
            return
        bind_consumer_loop(asyncio.get_running_loop())
        await self.accept()
        if _open_sockets >= MAX_SOCKETS:
            await self.close(code=CLOSE_TRY_LATER)
            return
        _open_sockets += 1
        self.counted = True
        await self._join(access_group(self.scope["user"].pk))

    async def _join(self, group: str) -> bool:
        """Join a channel-layer group; if the layer (Redis) fails, close with "try again
        later" (live.js backs off and comes back) instead of dying with 1011."""
        try:
            await self.channel_layer.group_add(group, self.channel_name)
        except Exception as exc:  # noqa: BLE001 - any layer failure means the same to the client
            log.warning("live socket closed: the channel layer refused a subscription (%s)", exc)
            await self.close(code=CLOSE_TRY_LATER)
            return False
        self.groups.add(group)
        return True

    async def disconnect(self, code: int) -> None:
        global _open_sockets
        if getattr(self, "counted", False):
            _open_sockets -= 1
            self.counted = False
        for task in getattr(self, "followers", set()):
            task.cancel()
        for group in getattr(self, "groups", set()):
            try:
                await self.channel_layer.group_discard(group, self.channel_name)
            except Exception:  # the layer drops the local member before unsubscribing: nothing stale
                log.debug("group_discard of %s failed", group, exc_info=True)
        self.groups = set()

    async def receive(
        self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any
    ) -> None:
        """Frames are small JSON texts; anything else is answered with an error (and,
        repeated, the socket is closed) rather than ending in a traceback and 1011."""
        if text_data is None:
            await self._bad_frame("binary frame", "send JSON text frames")
            return
        if len(text_data) > MAX_FRAME_CHARS:
            await self._bad_frame("oversized frame", f"frames are at most {MAX_FRAME_CHARS} characters")
            return
        try:
            content = json.loads(text_data)
        except (ValueError, RecursionError):
            await self._bad_frame("not JSON", "frames must be JSON")
            return
        await self.receive_json(content)

    async def _bad_frame(self, what: str, advice: str) -> None:
        self.bad_frames += 1
        _BadFrameLog.note(getattr(self.scope.get("user"), "pk", None), what)
        if self.bad_frames > MAX_BAD_FRAMES:
            await self.close(code=CLOSE_POLICY)
            return
        await self.send_json({"error": f"{what}: {advice}"})

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        wanted = content.get("subscribe") if isinstance(content, dict) else None
        if not isinstance(wanted, list) or not all(isinstance(t, str) for t in wanted):
            await self._bad_frame("unexpected message", 'expected {"subscribe": ["topic", ...]}')
            return
        since = content.get("since")
        since = since if isinstance(since, dict) else {}
        granted, refused = [], []
        for topic in wanted[:MAX_TOPICS]:
            if topic in self.topics:
                granted.append(topic)
            elif len(self.topics) < MAX_TOPICS and await self._checked(topic):
                if not await self._join(group_name(topic)):
                    return
                self.topics.add(topic)
                granted.append(topic)
                self._start_follower(topic)
            else:
                refused.append(topic)
        await self.send_json({"subscribed": granted, "refused": refused})
        await self._replay(
            {t: since[t] for t in granted if isinstance(since.get(t), str) and POSITION.fullmatch(since[t])}
        )

    async def _replay(self, since: dict[str, str]) -> None:
        """Send what each topic published after the position the page asked from (it was
        rendered then, or saw that last); events arriving live meanwhile are not sent twice.
        A topic whose missed events are no longer kept gets the page told to re-read."""
        lost = False
        for topic, position in since.items():
            try:
                missed = await asyncio.to_thread(replay.since, topic, position)
            except Exception as exc:  # noqa: BLE001 - Redis away: the page re-reads instead
                log.info("no replay for %s: %s", topic, exc)
                missed = None
            if missed is None:
                lost = True
                continue
            for seq, event in missed:
                self.seen[topic] = replay.parse(seq)
                await self.send_json(
                    {"topic": topic, "html": event.get("html", ""), "data": event.get("data"), "seq": seq}
                )
        if lost:
            await self.send_json({"resync": True})

    def _start_follower(self, topic: str) -> None:
        for pattern, dotted in FOLLOWERS:
            if pattern.fullmatch(topic) and len(self.followers) < 4:
                task = asyncio.ensure_future(self._follow(topic, dotted))
                self.followers.add(task)
                task.add_done_callback(self.followers.discard)
                return

    async def _follow(self, topic: str, dotted: str) -> None:
        loop = asyncio.get_running_loop()
        checked = loop.time()
        try:
            async for data in import_string(dotted)(self.scope["user"], topic):
                # A stream runs for as long as the page is open: re-check now and then
                # (a log line each time would be a query per line).
                if loop.time() - checked > FOLLOWER_RECHECK_SECONDS:
                    if not await self._may_still_receive(topic):
                        await self._lose_access(topic)
                        return
                    checked = loop.time()
                await self.send_json({"topic": topic, "html": "", "data": data})
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("follower for %s failed", topic)

    async def _checked(self, topic: str) -> bool:
        """May the user subscribe? If the database cannot say, no (and the socket closes
        with "try again later", for the browser to come back)."""
        try:
            return await self._may_subscribe(topic)
        except DatabaseError as exc:
            log.warning("live socket closed: a subscription could not be checked (%s)", exc)
            await self.close(code=CLOSE_TRY_LATER)
            return False

    @database_sync_to_async
    def _may_subscribe(self, topic: str) -> bool:
        return _retrying_once(lambda: access.can_subscribe(self.scope["user"], topic))

    @database_sync_to_async
    def _may_still_receive(self, topic: str) -> bool:
        """Asked afresh when told the user's access changed, and by running streams: the
        account may have been disabled or the membership removed since the subscription
        (the scope's user is from connect)."""

        def ask() -> bool:
            pk = getattr(self.scope["user"], "pk", None)
            user = get_user_model().objects.filter(pk=pk).first() if pk is not None else None
            return access.can_subscribe(user, topic)

        return _retrying_once(ask)

    async def _lose_access(self, topic: str) -> None:
        if getattr(self, "access_gone", False):
            return
        self.access_gone = True
        log.info("closing a live socket of user %s: no longer allowed %s", self.scope["user"].pk, topic)
        await self.close(code=CLOSE_ACCESS_GONE)

    async def access_changed(self, event: dict[str, Any]) -> None:
        """A membership or the account changed (portal.access_news): check every
        subscription again, and close if any is no longer allowed. Events themselves
        are then sent without a query each (a storm times a thousand sockets). If the
        database cannot say, the socket closes with "try again later": the browser comes
        back and subscribes anew, checked then (never kept open unchecked)."""
        for topic in list(self.topics):
            try:
                allowed = await self._may_still_receive(topic)
            except DatabaseError as exc:
                log.warning("live socket closed: its access could not be checked (%s)", exc)
                await self.close(code=CLOSE_TRY_LATER)
                return
            if not allowed:
                await self._lose_access(topic)
                return

    async def live_resync(self, event: dict[str, Any]) -> None:
        """The channel layer lost Redis and has it back (portal.channel_layer): events
        may have been missed, so the page re-reads what it shows."""
        await self.send_json({"resync": True})

    async def live_event(self, event: dict[str, Any]) -> None:
        topic = event["topic"]
        if getattr(self, "access_gone", False) or topic not in self.topics:
            return
        seq = event.get("seq") or ""
        if seq and topic in self.seen:
            if replay.parse(seq) <= self.seen[topic]:
                return  # sent already, from the replay
            del self.seen[topic]  # live from here on: positions only grow
        await self.send_json(
            {"topic": topic, "html": event.get("html", ""), "data": event.get("data"), "seq": seq}
        )
