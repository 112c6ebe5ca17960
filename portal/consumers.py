"""The one websocket consumer: subscribe to topics, receive their events."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.contrib.auth import get_user_model
from django.utils.module_loading import import_string

from . import access
from .live import access_group, bind_consumer_loop, group_name

#: A page subscribes to a handful of topics; more is a misbehaving client.
MAX_TOPICS = 50
#: Close code when the user may no longer see what the socket carries (4000+: ours).
CLOSE_ACCESS_GONE = 4403
#: How often a running stream (logs, stats) re-checks its user's access.
FOLLOWER_RECHECK_SECONDS = 5.0

log = logging.getLogger(__name__)

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
        self.topics: set[str] = set()
        self.followers: set[asyncio.Task[None]] = set()
        if not access.is_signed_in(self.scope.get("user")):
            await self.close()
            return
        bind_consumer_loop(asyncio.get_running_loop())
        await self.accept()
        await self.channel_layer.group_add(access_group(self.scope["user"].pk), self.channel_name)

    async def disconnect(self, code: int) -> None:
        for task in getattr(self, "followers", set()):
            task.cancel()
        user = self.scope.get("user")
        if access.is_signed_in(user):
            await self.channel_layer.group_discard(access_group(user.pk), self.channel_name)
        for topic in getattr(self, "topics", set()):
            await self.channel_layer.group_discard(group_name(topic), self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        wanted = content.get("subscribe") if isinstance(content, dict) else None
        if not isinstance(wanted, list) or not all(isinstance(t, str) for t in wanted):
            await self.send_json({"error": 'expected {"subscribe": ["topic", ...]}'})
            return
        granted, refused = [], []
        for topic in wanted[:MAX_TOPICS]:
            if len(self.topics) < MAX_TOPICS and await self._may_subscribe(topic):
                await self.channel_layer.group_add(group_name(topic), self.channel_name)
                self.topics.add(topic)
                granted.append(topic)
                self._start_follower(topic)
            else:
                refused.append(topic)
        await self.send_json({"subscribed": granted, "refused": refused})

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

    @database_sync_to_async
    def _may_subscribe(self, topic: str) -> bool:
        return access.can_subscribe(self.scope["user"], topic)

    @database_sync_to_async
    def _may_still_receive(self, topic: str) -> bool:
        """Asked afresh when told the user's access changed, and by running streams: the
        account may have been disabled or the membership removed since the subscription
        (the scope's user is from connect)."""
        pk = getattr(self.scope["user"], "pk", None)
        user = get_user_model().objects.filter(pk=pk).first() if pk is not None else None
        return access.can_subscribe(user, topic)

    async def _lose_access(self, topic: str) -> None:
        if getattr(self, "access_gone", False):
            return
        self.access_gone = True
        log.info("closing a live socket of user %s: no longer allowed %s", self.scope["user"].pk, topic)
        await self.close(code=CLOSE_ACCESS_GONE)

    async def access_changed(self, event: dict[str, Any]) -> None:
        """A membership or the account changed (portal.access_news): check every
        subscription again, and close if any is no longer allowed. Events themselves
        are then sent without a query each (a storm times a thousand sockets)."""
        for topic in list(self.topics):
            if not await self._may_still_receive(topic):
                await self._lose_access(topic)
                return

    async def live_event(self, event: dict[str, Any]) -> None:
        topic = event["topic"]
        if getattr(self, "access_gone", False) or topic not in self.topics:
            return
        await self.send_json({"topic": topic, "html": event.get("html", ""), "data": event.get("data")})
