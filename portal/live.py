"""Live events: one helper to publish, one channel-layer group per topic.

A topic names what changed, scoped so access can be checked per subscriber
(``audit:all``, ``audit:user:7``, ``project:3:hosts``; see
``portal.access.can_subscribe``). Payloads are rendered HTML fragments that the
browser's live.js swaps in (by element id, or into a ``data-live-into`` list),
plus optional JSON ``data`` for scripts and tests.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from typing import Any, cast

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer
from channels_redis.pubsub import RedisPubSubChannelLayer
from django.conf import settings
from django.utils.functional import SimpleLazyObject

from . import redis_client, replay

log = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^a-zA-Z0-9_.-]")


def group_name(topic: str) -> str:
    """Channel-layer group names allow only [a-zA-Z0-9_.-] and under 100 characters."""
    safe = _UNSAFE.sub("_", topic)
    digest = hashlib.sha256(topic.encode()).hexdigest()[:12]
    return f"live.{safe[:60]}.{digest}"


def _message(topic: str, html: str, data: Any, position: str) -> dict[str, Any]:
    return {"type": "live.event", "topic": topic, "html": html, "data": data, "seq": position}


def _keep(topic: str, html: str, data: Any) -> str:
    """Keep the event for pages that subscribe late or come back (portal.replay); its
    position, or "" when it could not be kept (the event itself still goes out)."""
    try:
        return replay.record(topic, html, data)
    except Exception:
        log.warning("live event for %s not kept for replay", topic, exc_info=True)
        return ""


def position_now(request: Any = None) -> dict[str, Any]:
    """Template context: ``live_since``, the position a page is rendered at (its
    subscription asks for what came after). Read only if the page uses it."""

    def now() -> str:
        try:
            return replay.mark()
        except Exception:
            log.warning("no replay position for this page", exc_info=True)
            return ""

    return {"live_since": SimpleLazyObject(now)}


#: The event loop the websocket consumers run on (daphne's), once one has connected.
_consumer_loop: asyncio.AbstractEventLoop | None = None


def bind_consumer_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Called from the consumer: where an in-memory layer's queues live."""
    global _consumer_loop
    _consumer_loop = loop


def _send_on_consumer_loop(coroutine: Any) -> bool:
    """The in-memory layer's queues belong to the consumers' loop: a task thread that
    sent from a loop of its own would queue the event without waking the receiver,
    so it arrived late or never. Hand the send to that loop instead."""
    loop = _consumer_loop
    if loop is None or loop.is_closed() or not loop.is_running():
        return False
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        return False
    asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout=5)
    return True


def publish(topic: str, *, html: str = "", data: Any = None) -> bool:
    """Send an event to every browser subscribed to ``topic``; from sync code.

    The database is the truth and the event only news of it, so a channel layer
    that is down is logged, not raised: the change itself must not fail.
    """
    position = _keep(topic, html, data)
    return _group_send(group_name(topic), _message(topic, html, data, position), topic)


def access_group(user_id: int) -> str:
    """The group of one user's open sockets (told when that user's access changes)."""
    return f"access.user.{int(user_id)}"


def access_changed(user_id: int) -> bool:
    """Tell ``user_id``'s open sockets to check their subscriptions again: a membership
    or the account changed (portal.access_news). They check then, not on every event."""
    return _group_send(access_group(user_id), {"type": "access.changed"}, f"access of user {user_id}")


def _group_channel(group: str) -> str:
    """The Redis pub/sub channel RedisPubSubChannelLayer uses for ``group``."""
    config = cast(dict[str, Any], settings.CHANNEL_LAYERS["default"]).get("CONFIG", {})
    return f"{config.get('prefix', 'asgi')}__group__{group}"


def _group_send(group: str, message: dict[str, Any], what: str) -> bool:
    layer = get_channel_layer()
    try:
        if isinstance(layer, RedisPubSubChannelLayer):
            # One PUBLISH on the process's shared client: through async_to_sync the layer
            # would build an event loop, a pool and a connection for every event sent.
            r = redis_client.client()
            if r is not None:
                r.publish(_group_channel(group), layer.serialize(message))
                return True
        if isinstance(layer, InMemoryChannelLayer):
            if not layer.groups.get(group):
                # Only this process's sockets can be members of an in-memory group: with
                # none, there is nobody to tell. (Sending anyway made a task's thread wait
                # for a turn of a busy event loop, ~15 ms an event during a 50-host push.)
                return True
            coroutine = layer.group_send(group, message)
            if _send_on_consumer_loop(coroutine):
                return True
            coroutine.close()
        async_to_sync(layer.group_send)(group, message)
    except Exception:
        log.warning("live event for %s not delivered", what, exc_info=True)
        return False
    return True


async def apublish(topic: str, *, html: str = "", data: Any = None) -> bool:
    """``publish`` for async code (consumers, watchers)."""
    position = await asyncio.to_thread(_keep, topic, html, data)
    try:
        await get_channel_layer().group_send(group_name(topic), _message(topic, html, data, position))
    except Exception:
        log.warning("live event for %s not delivered", topic, exc_info=True)
        return False
    return True
