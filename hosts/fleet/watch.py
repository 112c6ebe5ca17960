"""The engines watcher: every enabled host's Docker event stream, and a periodic health check.

Registered as "engines" in portal.watchers by the hosts app (``manage.py watch [--shard I/N]``, or
inside daphne under ``make run``). For each host of its shard it keeps:

- an event stream (a thread per host: the docker SDK is blocking). A container
  event refreshes that container's row on the host page and the host's counts
  on the dashboard at once; a broken stream triggers an immediate check.
- a health check (``/info``) every ``PORTAL_HOST_CHECK_INTERVAL`` seconds (15),
  at most ``PORTAL_HOST_CHECK_CONCURRENCY`` (16) at a time, each bounded by a
  timeout, so one dead host never delays the others. Status follows
  hosts.fleet.status (Admiral's ON / SUSPECT / OFF).
- its ``FOLLOWERS`` (the fleet search's inventory) told of every event, and asked to read
  the whole engine again when its stream (re)starts and every ``RESYNC_EVERY`` seconds.

Also the live followers for a container's logs and stats, which the one
websocket consumer starts when a browser subscribes to their topic.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connection
from django.template.loader import render_to_string

from hosts.fleet import containers as engine_containers
from hosts.fleet import counters, engine, status
from hosts.fleet import endpoint as engine_endpoint
from hosts.fleet import trust as engine_trust
from hosts.fleet.container_rows import publish_container
from hosts.models import Host, HostStatus
from portal import access, live
from portal.watchers import Shard

log = logging.getLogger(__name__)

CONTAINER_ACTIONS = {"create", "start", "die", "stop", "destroy", "pause", "unpause", "rename", "oom", "kill"}
#: The events a host page lists (the stream also carries volume events, for the followers).
PAGE_EVENT_TYPES = {"container", "image"}


@dataclass(frozen=True)
class Follower:
    """Who else keeps up with the engines (the fleet search's inventory, registered in
    hosts.registrations, so the fleet never imports it). Each call gets the host and the
    watcher's open client: ``event(host, event, sdk)`` for every engine event, ``resync(host,
    sdk)`` when the host's stream has (re)started (what happened meanwhile sent no event) and
    every ``RESYNC_EVERY`` seconds after, on a small pool of their own."""

    event: Callable[[Host, dict[str, Any], Any], None]
    resync: Callable[[Host, Any], None]


FOLLOWERS: list[Follower] = []
#: Seconds between full reads for the followers: a missed or mishandled event is mended by then.
RESYNC_EVERY = 300.0


def check_interval() -> float:
    return float(settings.HOST_CHECK_INTERVAL)


def check_concurrency() -> int:
    return int(settings.HOST_CHECK_CONCURRENCY)


@dataclass(frozen=True)
class Target:
    """What the watcher needs of a host, read once per sync (never a live model across threads)."""

    pk: int
    url: str
    trust: engine_trust.Trust

    @property
    def key(self) -> str:
        t = self.trust
        fields = (t.ca, t.client_cert, t.client_key, t.fingerprint, str(t.insecure))
        material = "\0".join((self.url, *fields, t.ssh_host_key, t.ssh_private_key))
        return hashlib.sha256(material.encode()).hexdigest()


def _db(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Database work on a watcher thread: its own connection, closed afterwards (a pool thread
    idles for long stretches, and a held connection would outlive the watcher)."""

    def run(*args: Any, **kwargs: Any) -> Any:
        close_old_connections()
        try:
            return fn(*args, **kwargs)
        finally:
            connection.close()

    return run


@_db
def _targets(shard: Shard) -> dict[int, Target]:
    hosts = Host.objects.filter(enabled=True).exclude(status=HostStatus.DISABLED)
    return {
        h.pk: Target(h.pk, h.docker_url, engine_trust.Trust.of(h))
        for h in hosts.only("pk", "docker_url", *engine_trust.FIELDS)
        if shard.owns(h.pk)
    }


@_db
def _repair_counters() -> None:
    try:
        mended = counters.repair()
    except Exception:
        log.exception("recounting the host counters failed")  # the next round tries again
        return
    if mended:
        log.warning("the host counters of %d project(s) were off and are recounted", mended)


@_db
def _check(target: Target) -> None:
    """One health check: /info within the timeout, then ON or one more failure."""
    try:
        sdk = engine.connect(target.url, target.trust)
        try:
            facts = engine.read_facts(sdk)
        finally:
            sdk.close()
    except Exception as exc:  # noqa: BLE001 - any failure is a failed check
        error = engine.describe_error(exc, target.url)
        host = Host.objects.filter(pk=target.pk, enabled=True).first()
        if host is not None:
            status.record_failure(host, error)
        return
    host = Host.objects.filter(pk=target.pk, enabled=True).first()
    if host is not None:
        status.record_success(host, facts)


@_db
def _record_timeout(target: Target) -> None:
    host = Host.objects.filter(pk=target.pk, enabled=True).first()
    if host is not None:
        status.record_failure(host, f"{target.url} did not answer the health check in time.")


@_db
def _on_event(target: Target, event: dict[str, Any]) -> None:
    """A container or image event: publish it, refresh the container's row and the host's counts."""
    host = Host.objects.select_related("project").filter(pk=target.pk, enabled=True).first()
    if host is None:
        return
    if event.get("Type") in PAGE_EVENT_TYPES:
        html = render_to_string("hosts/fleet/engine_event_row.html", {"e": event})
        live.publish(f"{status.host_topic(host)}:events", html=html, data={"action": event.get("Action")})
    if event.get("Type") == "container" and event.get("Action", "").split(":")[0] in CONTAINER_ACTIONS:
        publish_container(host, event["Actor"]["ID"], _client(target))
    for follower in FOLLOWERS:
        try:
            follower.event(host, event, _client(target))
        except Exception:  # one follower's failure must not stop the others (the resync mends it)
            log.warning("an engine follower failed on an event of host %s", target.pk, exc_info=True)


@_db
def _resync(target: Target) -> None:
    host = Host.objects.filter(pk=target.pk, enabled=True).first()
    if host is None:
        return
    for follower in FOLLOWERS:
        try:
            follower.resync(host, _client(target))
        except Exception:  # the next round tries again
            log.warning("an engine follower could not read host %s again", target.pk, exc_info=True)


_clients: dict[str, Any] = {}
_clients_lock = threading.Lock()


def _client(target: Target) -> Any:
    """One kept-alive client per host (by its trust), for the refreshes that follow its events."""
    with _clients_lock:
        sdk = _clients.get(target.key)
        if sdk is None:
            sdk = _clients[target.key] = engine.connect(target.url, target.trust)
        return sdk


def _forget_client(target: Target) -> None:
    with _clients_lock:
        sdk = _clients.pop(target.key, None)
    if sdk is not None:
        with contextlib.suppress(Exception):
            sdk.close()


class Stream:
    """One host's event stream on its own thread, reconnecting with backoff until stopped."""

    def __init__(
        self,
        target: Target,
        on_event: Callable[[Target, dict[str, Any]], None],
        on_broken: Any,
        on_connected: Callable[[Target], None] | None = None,
    ):
        self.target = target
        self._on_event = on_event
        self._on_broken = on_broken
        self._on_connected = on_connected
        self._stopped = threading.Event()
        self._current: Any = None
        self.connected = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"engine-events-{target.pk}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        with contextlib.suppress(Exception):
            if self._current is not None:
                self._current.close()

    def _run(self) -> None:
        delay = 1.0
        while not self._stopped.is_set():
            try:
                sdk = engine.connect(self.target.url, self.target.trust)
                try:
                    sdk.ping()
                    self._current = engine_containers.events(sdk)
                    self.connected.set()
                    if self._on_connected is not None:
                        self._on_connected(self.target)
                    delay = 1.0
                    for event in self._current:
                        if self._stopped.is_set():
                            break
                        self._on_event(self.target, event)
                finally:
                    self.connected.clear()
                    sdk.close()
            except Exception as exc:  # noqa: BLE001 - reconnect below, the health check reports status
                log.debug("event stream of host %s broke: %s", self.target.pk, exc)
            if self._stopped.is_set():
                return
            self._on_broken(self.target)
            # Backoff before reconnecting to an engine that went away; stop() ends the wait.
            self._stopped.wait(delay)
            delay = min(delay * 2, 30.0)


class EngineWatcher:
    def __init__(self, shard: Shard, interval: float, concurrency: int) -> None:
        self.shard = shard
        self.interval = interval
        self.concurrency = concurrency
        self.streams: dict[int, Stream] = {}
        self.last_check: dict[int, float] = {}
        # Checks and event handling on their own bounded pools: streams never starve checks.
        self.check_pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="engine-check")
        self.event_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="engine-event")
        self.semaphore = asyncio.Semaphore(concurrency)
        self.checking: set[int] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.last_repair = float("-inf")
        # The followers' full reads: a pool of their own, so events never queue behind them.
        self.resync_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="engine-resync")
        self.last_resync: dict[int, float] = {}
        self.resyncing: set[int] = set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self.loop = loop
        try:
            while True:
                targets = await loop.run_in_executor(self.check_pool, _targets, self.shard)
                self._sync_streams(targets)
                now = time.monotonic()
                # The first shard mends the fleet's counters (hosts.fleet.counters): at start, for
                # what changed while no watcher ran, then now and then.
                if self.shard.index == 1 and now - self.last_repair >= counters.REPAIR_EVERY:
                    self.last_repair = now
                    await loop.run_in_executor(self.check_pool, _repair_counters)
                for target in targets.values():
                    due = now - self.last_check.get(target.pk, 0) >= self.interval
                    if due and target.pk not in self.checking:
                        self._start_check(target)
                self._start_resyncs(now)
                # Re-read the host list often (new hosts stream within seconds); checks keep their interval.
                await asyncio.sleep(min(2.0, self.interval))
        finally:
            for task in list(self.tasks):
                task.cancel()
            for stream in self.streams.values():
                stream.stop()
            self.check_pool.shutdown(wait=False, cancel_futures=True)
            self.event_pool.shutdown(wait=False, cancel_futures=True)
            self.resync_pool.shutdown(wait=False, cancel_futures=True)

    def _start_check(self, target: Target) -> None:
        self.checking.add(target.pk)
        self.last_check[target.pk] = time.monotonic()
        task = asyncio.ensure_future(self._bounded_check(target))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        task.add_done_callback(lambda _t: self.checking.discard(target.pk))

    async def _bounded_check(self, target: Target) -> None:
        async with self.semaphore:
            future = self.loop.run_in_executor(self.check_pool, _check, target)
            try:
                # The SDK's own timeouts end the call; this guards against anything that does not.
                await asyncio.wait_for(asyncio.shield(future), timeout=engine_endpoint.TIMEOUT * 2 + 2)
            except TimeoutError:
                await self.loop.run_in_executor(None, _record_timeout, target)
            except Exception:
                log.exception("health check of host %s failed", target.pk)

    def _sync_streams(self, targets: dict[int, Target]) -> None:
        for pk in list(self.streams):
            if pk not in targets or targets[pk].key != self.streams[pk].target.key:
                stream = self.streams.pop(pk)
                stream.stop()
                _forget_client(stream.target)
                self.last_check.pop(pk, None)
                self.last_resync.pop(pk, None)
        for pk, target in targets.items():
            if pk not in self.streams:
                self.streams[pk] = Stream(
                    target, self._event_from_thread, self._broken_from_thread, self._connected_from_thread
                )

    def _start_resyncs(self, now: float) -> None:
        if not FOLLOWERS:
            return
        for pk, stream in self.streams.items():
            due = now - self.last_resync.get(pk, float("-inf")) >= RESYNC_EVERY
            if due and stream.connected.is_set() and pk not in self.resyncing:
                self.last_resync[pk] = now
                self.resyncing.add(pk)
                future = self.resync_pool.submit(_safe(_resync), stream.target)
                future.add_done_callback(self._resynced(pk))

    def _resynced(self, pk: int) -> Callable[[Any], None]:
        def done(_future: Any) -> None:
            # From the pool's thread: the set belongs to the loop. A stopped loop no longer asks.
            with contextlib.suppress(RuntimeError):
                self.loop.call_soon_threadsafe(self.resyncing.discard, pk)

        return done

    def _connected_from_thread(self, target: Target) -> None:
        # A stream that (re)started may have missed events: its host is read again on the next round.
        self.loop.call_soon_threadsafe(self.last_resync.pop, target.pk, None)

    def _event_from_thread(self, target: Target, event: dict[str, Any]) -> None:
        # Handled in order per host would need a queue per host; a small pool keeps latency low
        # and each handler re-reads the container, so order does not change the result.
        self.event_pool.submit(_safe(_on_event), target, event)

    def _broken_from_thread(self, target: Target) -> None:
        def check_now() -> None:
            if target.pk not in self.checking:
                self._start_check(target)

        self.loop.call_soon_threadsafe(check_now)


def _safe(fn: Callable[..., Any]) -> Callable[..., Any]:
    def run(*args: Any) -> None:
        try:
            fn(*args)
        except Exception:
            log.exception("handling an engine event failed")

    return run


async def watch_engines(shard: Shard) -> None:
    await EngineWatcher(shard, check_interval(), check_concurrency()).run()


# -- live followers: a container's logs and stats ----------------------------------------------------

#: Who else gets a followed container's stats readings (the history: hosts.stats.feed, registered
#: in hosts.registrations): ``listener(host id, container id, the engine's reading)``.
STATS_LISTENERS: list[Callable[[int, str, dict[str, Any]], None]] = []

FOLLOW_TOPIC = re.compile(
    r"project:(?P<project>\d+):host:(?P<host>\d+):container:(?P<container>[0-9a-f]{12,64})"
    r":(?:logs:(?P<tail>\d{1,5})|(?P<stats>stats))"
)


@_db
def _followed_host(user: Any, project_id: int, host_id: int) -> Target | None:
    host = Host.objects.filter(pk=host_id, project_id=project_id, enabled=True).first()
    if host is None or not access.can(user, "host.view", host.project_id):
        return None
    return Target(host.pk, host.docker_url, engine_trust.Trust.of(host))


async def follow(user: Any, topic: str) -> AsyncIterator[dict[str, Any]]:
    """Stream a container's log lines (``...:logs:TAIL``) or stats (``...:stats``) to one subscriber."""
    match = FOLLOW_TOPIC.fullmatch(topic)
    if match is None:
        return
    loop = asyncio.get_running_loop()
    target = await loop.run_in_executor(None, _followed_host, user, int(match["project"]), int(match["host"]))
    if target is None:
        yield {"error": "no such host"}
        return
    queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(maxsize=1000)
    stopped = threading.Event()
    holder: dict[str, Any] = {}

    def put(item: dict[str, Any] | None) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            queue.put_nowait(item)

    def hand_over(item: dict[str, Any] | None) -> None:
        # The subscriber may be gone and its loop closed while the engine's stream still ends here.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(put, item)

    def pump() -> None:
        try:
            sdk = engine.connect(target.url, target.trust, timeout=10)
            holder["sdk"] = sdk
            if match["stats"]:
                stream = engine_containers.stats(sdk, match["container"])
                holder["stream"] = stream
                for sample in stream:
                    if stopped.is_set():
                        break
                    for listener in STATS_LISTENERS:
                        _safe(listener)(target.pk, match["container"], sample)
                    hand_over(_stats(sample))
            else:
                stream = engine_containers.logs(sdk, match["container"], int(match["tail"]))
                holder["stream"] = stream
                for chunk in stream:
                    if stopped.is_set():
                        break
                    text = chunk.decode("utf-8", errors="replace")
                    hand_over({"lines": text.rstrip("\n").split("\n")})
        except Exception as exc:  # noqa: BLE001 - told to the browser
            if not stopped.is_set():
                hand_over({"error": engine.describe_error(exc, target.url)})
        finally:
            hand_over(None)

    thread = threading.Thread(target=pump, name=f"follow-{target.pk}", daemon=True)
    thread.start()
    try:
        while True:
            item = await queue.get()
            if item is None:
                yield {"ended": True}
                return
            yield item
    finally:
        stopped.set()
        for name in ("stream", "sdk"):
            with contextlib.suppress(Exception):
                holder[name].close()


def _stats(sample: dict[str, Any]) -> dict[str, Any]:
    cpu, pre = sample.get("cpu_stats") or {}, sample.get("precpu_stats") or {}
    cpu_delta = (cpu.get("cpu_usage") or {}).get("total_usage", 0) - (pre.get("cpu_usage") or {}).get(
        "total_usage", 0
    )
    system_delta = (cpu.get("system_cpu_usage") or 0) - (pre.get("system_cpu_usage") or 0)
    cpus = cpu.get("online_cpus") or 1
    percent = (cpu_delta / system_delta) * cpus * 100 if system_delta > 0 and cpu_delta > 0 else 0.0
    memory = sample.get("memory_stats") or {}
    return {
        "cpu_percent": round(percent, 2),
        "memory_bytes": int(memory.get("usage") or 0),
        "memory_limit": int(memory.get("limit") or 0),
    }
