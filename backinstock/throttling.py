"""Throttles of the subscribe endpoints: per client and per email address.

Fixed windows counted in the cache (Redis in production), so every web process shares one
count. If the cache cannot be reached the request is let through and the outage is logged:
subscribing must keep working when Redis is down (ARCHITECTURE.md).

On Redis the windows of all the view's throttles are counted in one round trip
(``window_counts``); the cache API's ``add`` and ``incr`` take three per throttle (``incr`` checks
that the key exists first), each with a new client object, and these throttles run on every
subscribe request (bench/README.md, "Load").
"""

import functools
import hashlib
import logging
import time
import weakref
from dataclasses import dataclass
from typing import Any, ClassVar

from django.conf import settings
from django.core.cache import DEFAULT_CACHE_ALIAS, caches
from django.core.cache.backends.redis import RedisCache
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from backinstock.emails import email_match_key

logger = logging.getLogger(__name__)

_PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_PERIOD_ALIASES = {
    "s": "second",
    "sec": "second",
    "m": "minute",
    "min": "minute",
    "h": "hour",
    "d": "day",
}


@functools.lru_cache(maxsize=64)  # read on every request; a pure function of the setting
def rate_parse(rate: str) -> tuple[int, int] | None:
    """``"30/min"`` → (30, 60); ``"none"`` → None (throttle off). Raises on anything else."""
    text = rate.strip().lower()
    if text in {"none", "off", ""}:
        return None
    count, slash, period = text.partition("/")
    period = _PERIOD_ALIASES.get(period, period.rstrip("s") if period.endswith("s") else period)
    if not slash or not count.isdigit() or int(count) < 1 or period not in _PERIODS:
        raise ImproperlyConfigured(f"Invalid rate {rate!r}: use N/second|minute|hour|day, or none.")
    return int(count), _PERIODS[period]


# The counting script, bound to one redis-py client per cache backend object (each thread has
# its own backend, see django.core.cache.caches). ``RedisCacheClient.get_client`` builds a new
# client object on every call, which costs more than the round trip; the connection pool behind
# the kept client is the backend's, with its timeouts.
_redis_scripts: "weakref.WeakKeyDictionary[Any, Any]" = weakref.WeakKeyDictionary()

# Atomic in Redis: the first hit of a window creates its key and sets the key's expiry.
_WINDOW_COUNT_SCRIPT = """
local counts = {}
for i, key in ipairs(KEYS) do
    local count = redis.call('INCR', key)
    if count == 1 then redis.call('EXPIRE', key, ARGV[i]) end
    counts[i] = count
end
return counts
"""


def window_counts(windows: list[tuple[str, int]]) -> list[int]:
    """Count one more hit in each window ``(key, period)``; returns the counts, in order.

    Each is the same as ``cache.add(key, 0, period + 1)`` then ``cache.incr(key)``, with the same
    key. On Redis all of them take one round trip: a small script (``EVALSHA``) run atomically,
    so a key can never lose its expiry between the two steps. Raises if the cache fails.
    """
    backend = caches[DEFAULT_CACHE_ALIAS]
    if not isinstance(backend, RedisCache):
        counts = []
        for key, period in windows:
            backend.add(key, 0, timeout=period + 1)
            counts.append(backend.incr(key))
        return counts
    keys = [backend.make_and_validate_key(key) for key, _ in windows]
    script = _redis_scripts.get(backend)
    if script is None:
        client = backend._cache.get_client(keys[0], write=True)  # type: ignore[attr-defined]
        script = _redis_scripts[backend] = client.register_script(_WINDOW_COUNT_SCRIPT)
    return [int(count) for count in script(keys=keys, args=[p + 1 for _, p in windows])]


@dataclass(frozen=True)
class _Window:
    key: str
    limit: int
    period: int
    ends_at: float


# Where a request keeps the counts of its view's fixed-window throttles (see _request_counts).
_COUNTS_ATTRIBUTE = "_fixed_window_counts"


class _FixedWindowThrottle(BaseThrottle):
    scope: ClassVar[str]
    rate_setting: ClassVar[str]

    def __init__(self) -> None:
        self.wait_seconds: float | None = None

    def identity(self, request: Request) -> str | None:
        raise NotImplementedError

    def window(self, request: Request, now: float) -> _Window | None:
        """The window this request counts in; None when the throttle is off or has no identity."""
        return self.window_for(self.identity(request), now)

    @classmethod
    def window_for(cls, identity: str | None, now: float) -> _Window | None:
        """The window of ``identity`` at ``now``; None when the throttle is off or no identity."""
        rate = rate_parse(getattr(settings, cls.rate_setting))
        if rate is None or identity is None:
            return None
        limit, period = rate
        window = int(now // period)
        digest = hashlib.sha256(identity.encode()).hexdigest()[:32]
        key = f"throttle:{cls.scope}:{digest}:{window}"
        return _Window(key=key, limit=limit, period=period, ends_at=(window + 1) * period)

    def allow_request(self, request: Request, view: Any) -> bool:
        counted = _request_counts(request, view, self).get(self.scope)
        if counted is None:
            return True
        window, count = counted
        if count > window.limit:
            self.wait_seconds = window.ends_at - time.time()
            return False
        return True

    def wait(self) -> float | None:
        return self.wait_seconds


_Counted = dict[str, tuple[_Window, int] | None]


def _request_counts(request: Request, view: Any, asking: _FixedWindowThrottle) -> _Counted:
    """The counts of every fixed-window throttle of the view, counted once per request.

    DRF asks each throttle in turn, and always asks all of them; the first one asked counts the
    windows of all, in one round trip, and the others read the result. A throttle that is off,
    has no identity, or whose cache failed (logged; the request is let through) maps to None.
    """
    counted: _Counted = getattr(request, _COUNTS_ATTRIBUTE, None) or {}
    if asking.scope in counted:
        return counted
    throttles = [asking]  # a throttle the view does not list is counted on its own
    if not counted:
        throttles += [
            throttle
            for throttle in view.get_throttles()
            if isinstance(throttle, _FixedWindowThrottle) and throttle.scope != asking.scope
        ]
    now = time.time()
    counted.update(_windows_count({t.scope: t.window(request, now) for t in throttles}))
    setattr(request, _COUNTS_ATTRIBUTE, counted)
    return counted


def _windows_count(windows: dict[str, _Window | None]) -> _Counted:
    """Count one hit in each window, in one round trip; None where a throttle is off, has no
    identity, or the cache failed (logged; the request is let through)."""
    counted: _Counted = dict.fromkeys(windows)
    wanted = {scope: window for scope, window in windows.items() if window is not None}
    if not wanted:
        return counted
    try:
        counts = window_counts([(w.key, w.period) for w in wanted.values()])
    except Exception:  # any cache failure: fail open, visibly
        for scope in wanted:
            logger.warning(
                "throttle %s: cache unreachable, request let through", scope, exc_info=True
            )
    else:
        counted.update(
            {scope: (w, c) for (scope, w), c in zip(wanted.items(), counts, strict=True)}
        )
    return counted


def _email_identity(email: Any) -> str | None:
    if not isinstance(email, str) or not email.strip():
        return None
    return email_match_key(email)


class SubscribePerClientThrottle(_FixedWindowThrottle):
    """Per client address (``REMOTE_ADDR``, or ``X-Forwarded-For`` behind trusted proxies)."""

    scope = "subscribe-client"
    rate_setting = "SUBSCRIBE_RATE_PER_CLIENT"

    def identity(self, request: Request) -> str | None:
        return self.get_ident(request)


class SubscribePerEmailThrottle(_FixedWindowThrottle):
    """Per address being subscribed, whoever sends it; only the address's hash is stored."""

    scope = "subscribe-email"
    rate_setting = "SUBSCRIBE_RATE_PER_EMAIL"

    def identity(self, request: Request) -> str | None:
        data = request.data
        return _email_identity(data.get("email") if isinstance(data, dict) else None)


def subscribe_throttle_wait(*, request: HttpRequest, email: Any) -> float | None:
    """Count one subscribe request outside DRF's views (the Storefront API, CONTRACT §3b)
    exactly as the Checkout API's two throttles count it: per client (``REMOTE_ADDR``, or
    ``X-Forwarded-For`` behind ``DJANGO_NUM_PROXIES`` proxies) and per address, in the same
    windows. Returns the seconds until the first window over its limit ends, or None when the
    request may go on; fails open like the throttles."""
    # DRF's get_ident reads only META, which Django's request has as DRF's does.
    client = BaseThrottle().get_ident(request)  # type: ignore[arg-type]
    now = time.time()
    counted = _windows_count(
        {
            SubscribePerClientThrottle.scope: SubscribePerClientThrottle.window_for(client, now),
            SubscribePerEmailThrottle.scope: SubscribePerEmailThrottle.window_for(
                _email_identity(email), now
            ),
        }
    )
    waits = [w.ends_at - now for w, count in filter(None, counted.values()) if count > w.limit]
    return max(waits) if waits else None
