"""Throttles of subscribing: per client and per address.

Fixed windows counted in the cache (Redis in production), so every web process shares one
count. If the cache cannot be reached the request is let through and the outage is logged:
subscribing must keep working when Redis is down (ARCHITECTURE.md).

``subscribe_throttles_check`` is a plain function, so that every entry point that subscribes
(the REST APIs, a GraphQL endpoint) applies the same throttles; over a limit it raises
``SubscribeThrottled`` with the wait, which the API renders as ``429`` with ``Retry-After``.

- Per client: counted before the request is read, on the Checkout API (a DRF throttle).
- Per address: counted by ``subscription_create`` only once the request is valid and before it
  is stored, so that invalid requests naming someone's address cannot lock that person out. Its
  key is the mailbox without a ``+tag`` (``email_throttle_key``): ``carol+1`` … ``carol+12`` are
  one person asking twelve times.

On Redis the windows are counted in one round trip (``window_counts``); the cache API's ``add``
and ``incr`` take three per throttle (``incr`` checks that the key exists first), each with a
new client object, and these throttles run on every subscribe request (bench/README.md, "Load").
"""

import functools
import hashlib
import logging
import time
import weakref
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import DEFAULT_CACHE_ALIAS, caches
from django.core.cache.backends.redis import RedisCache
from django.core.exceptions import ImproperlyConfigured
from rest_framework.exceptions import Throttled
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from backinstock.emails import email_throttle_key

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
    scope: str
    key: str
    limit: int
    period: int
    ends_at: float


class SubscribeThrottled(Throttled):
    """Over a subscribe throttle's limit: ``429`` with ``Retry-After`` (``wait``, in seconds)."""

    wait: int


SCOPE_CLIENT, SCOPE_EMAIL = "subscribe-client", "subscribe-email"
_RATE_SETTINGS = {
    SCOPE_CLIENT: "SUBSCRIBE_RATE_PER_CLIENT",
    SCOPE_EMAIL: "SUBSCRIBE_RATE_PER_EMAIL",
}


def _window(*, scope: str, identity: str, now: float) -> _Window | None:
    """The window ``identity`` counts in now; None when the throttle is off.

    Only a hash of the identity is stored (it may be an address).
    """
    rate = rate_parse(getattr(settings, _RATE_SETTINGS[scope]))
    if rate is None:
        return None
    limit, period = rate
    window = int(now // period)
    digest = hashlib.sha256(identity.encode()).hexdigest()[:32]
    return _Window(
        scope=scope,
        key=f"throttle:{scope}:{digest}:{window}",
        limit=limit,
        period=period,
        ends_at=(window + 1) * period,
    )


def subscribe_throttles_check(*, client: str | None = None, email: str | None = None) -> None:
    """Count one subscribe request of ``client`` and/or for ``email``; raise if over a limit.

    ``client`` is the client's identity (its IP address, as DRF's ``get_ident`` gives it);
    ``email`` must be canonical (``backinstock.emails.email_canonical``) and is counted by its
    mailbox without a ``+tag``. Both windows are counted in one round trip. Raises
    ``SubscribeThrottled`` with the longest wait of the windows over their limit. If the cache
    cannot be reached, logs a warning and returns (fail open).
    """
    now = time.time()
    identities = {SCOPE_CLIENT: client, SCOPE_EMAIL: email_throttle_key(email) if email else None}
    windows = [
        window
        for scope, identity in identities.items()
        if identity and (window := _window(scope=scope, identity=identity, now=now)) is not None
    ]
    if not windows:
        return
    try:
        counts = window_counts([(w.key, w.period) for w in windows])
    except Exception:  # any cache failure: fail open, visibly
        for window in windows:
            logger.warning(
                "throttle %s: cache unreachable, request let through", window.scope, exc_info=True
            )
        return
    waits = [w.ends_at - now for w, count in zip(windows, counts, strict=True) if count > w.limit]
    if waits:
        raise SubscribeThrottled(wait=max(waits))


def email_throttle_check(*, email: str) -> None:
    """The per-address throttle alone (``subscribe_throttles_check``); ``email`` canonical."""
    subscribe_throttles_check(email=email)


class SubscribePerClientThrottle(BaseThrottle):
    """Per client address (``REMOTE_ADDR``, or ``X-Forwarded-For`` behind trusted proxies)."""

    def __init__(self) -> None:
        self.wait_seconds: float | None = None

    def allow_request(self, request: Request, view: Any) -> bool:
        try:
            subscribe_throttles_check(client=self.get_ident(request))
        except SubscribeThrottled as exc:
            self.wait_seconds = exc.wait
            return False
        return True

    def wait(self) -> float | None:
        return self.wait_seconds
