"""Rate limits on Django's cache: a fixed window per (scope, client address).

Ours rather than django-ratelimit: that library (last release 2023) fails its own
system check on the embedded default's local-memory cache and warns on Django's
Redis cache, and DRF's throttles never see a failed authentication. What is needed
is small: ``cache.add`` then ``cache.incr``, atomic on Redis and on the local-memory
cache alike, so concurrent callers cannot both slip under the limit.

Rates are written "count/seconds" (settings THROTTLE_*).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse

from .audit import client_address

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rate:
    count: int
    seconds: int

    @classmethod
    def parse(cls, text: str) -> Rate:
        count, _, seconds = text.partition("/")
        try:
            rate = cls(int(count), int(seconds or "60"))
        except ValueError:
            raise ValueError(f"a rate is 'count/seconds', not {text!r}") from None
        if rate.count < 1 or rate.seconds < 1:
            raise ValueError(f"a rate needs a count and seconds of at least 1, not {text!r}")
        return rate


def _rate(setting: str) -> Rate:
    return Rate.parse(str(getattr(settings, setting)))


def _keys(scope: str, who: str) -> tuple[str, str]:
    # The address is hashed: an IPv6 address has colons, and keys stay one length.
    base = f"throttle:{scope}:{hashlib.sha256(who.encode()).hexdigest()[:32]}"
    return base, base + ":start"


def _left(start: float | None, rate: Rate) -> int:
    if start is None:
        return rate.seconds
    return max(1, math.ceil(start + rate.seconds - time.time()))


def hit(scope: str, who: str, setting: str) -> int | None:
    """Count one request; None if it is within the rate, else the seconds until it may again.

    The window opens at the first request and lasts the rate's seconds (not aligned
    to the clock, so a burst cannot straddle two windows to get twice the count).
    """
    rate = _rate(setting)
    count_key, start_key = _keys(scope, who)
    try:
        if cache.add(count_key, 0, timeout=rate.seconds):
            cache.set(start_key, time.time(), timeout=rate.seconds)
        try:
            used = cache.incr(count_key)
        except ValueError:  # expired between add and incr: this opens the next window
            cache.set(count_key, 1, timeout=rate.seconds)
            cache.set(start_key, time.time(), timeout=rate.seconds)
            used = 1
        if used <= rate.count:
            return None
        return _left(cache.get(start_key), rate)
    except Exception:  # noqa: BLE001 - a brake must not take the portal down with the cache
        log.warning("throttle %s: the cache did not answer; letting the request through", scope)
        return None


def exceeded(scope: str, who: str, setting: str) -> int | None:
    """Like ``hit`` without counting: the seconds to wait if the limit is reached, else None."""
    rate = _rate(setting)
    count_key, start_key = _keys(scope, who)
    try:
        used = cache.get(count_key, 0)
        return _left(cache.get(start_key), rate) if used >= rate.count else None
    except Exception:  # noqa: BLE001 - see hit()
        return None


def too_many(wait: int) -> str:
    return f"Too many requests from this address; try again in {wait} seconds."


View = Callable[..., HttpResponse]


def per_address(scope: str, setting: str) -> Callable[[View], View]:
    """A view decorator: more than the rate from one address gets 429, and the view is not run."""

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            wait = hit(scope, client_address(request) or "-", setting)
            if wait is not None:
                response = JsonResponse({"error": too_many(wait)}, status=429)
                response["Retry-After"] = str(wait)
                return response
            return view(request, *args, **kwargs)

        return wrapped

    return decorate
