"""The channel layer in production: channels_redis's pub/sub layer, with two changes
the portal's one consumer allows.

- A socket's own channel lives in its process only. The portal never sends to one
  socket from elsewhere (everything goes through groups), so there is no need for the
  stock layer's SUBSCRIBE per socket: a connection storm costs Redis nothing but the
  groups this process did not follow yet, and a socket can open while Redis is away.
- When the process's subscription connection comes back after losing Redis, every
  local socket is told ``live.resync``: events published meanwhile were lost (pub/sub
  keeps nothing), so the page re-reads its state instead of showing a stale one.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

from channels_redis.pubsub import RedisPubSubChannelLayer, RedisPubSubLoopLayer, RedisSingleShardConnection
from channels_redis.utils import _wrap_close

log = logging.getLogger(__name__)

#: A lost subscription connection is logged at most this often (not each retry).
LOG_EVERY_SECONDS = 30.0


class PortalChannelLayer(RedisPubSubChannelLayer):
    def _get_layer(self) -> RedisPubSubLoopLayer:
        loop = asyncio.get_running_loop()
        if loop not in self._layers:
            # Made here before the stock lookup finds it: same bookkeeping (and close
            # wrapping) as the stock layer, our loop layer.
            self._layers[loop] = _LoopLayer(*self._args, **self._kwargs, channel_layer=self)
            _wrap_close(self, loop)
        return self._layers[loop]


class _LoopLayer(RedisPubSubLoopLayer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._shards: list[RedisSingleShardConnection] = [_Shard(shard.host, self) for shard in self._shards]

    async def new_channel(self, prefix: str = "specific.") -> str:
        channel = f"{self.prefix}{prefix}{uuid.uuid4().hex}"
        self.channels[channel] = asyncio.Queue()
        return channel

    def resync_local(self) -> None:
        message = self.channel_layer.serialize({"type": "live.resync"})
        for queue in self.channels.values():
            queue.put_nowait(message)


class _Shard(RedisSingleShardConnection):
    async def _do_receiving(self) -> None:
        lost_at: float | None = None
        logged = 0.0
        while True:
            try:
                if self._pubsub and self._pubsub.subscribed:
                    message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
                    if lost_at is not None:
                        log.warning(
                            "live events: Redis answers again after %.0f s; pages resync",
                            time.monotonic() - lost_at,
                        )
                        lost_at = None
                        self.channel_layer.resync_local()
                    self._receive_message(message)
                else:
                    await asyncio.sleep(0.1)
            except (asyncio.CancelledError, GeneratorExit):
                raise
            except Exception as exc:  # noqa: BLE001 - any failure here is Redis gone; retry
                now = time.monotonic()
                if lost_at is None:
                    lost_at = now
                if now - logged >= LOG_EVERY_SECONDS:
                    log.warning("live events: lost Redis (%s); retrying", exc)
                    logged = now
                await asyncio.sleep(1)
