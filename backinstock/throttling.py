"""Throttles of subscribing: per client and per address.

Fixed windows counted in the cache (Redis in production), so every web process shares one
count. If the cache cannot be reached the request is let through and the outage is logged:
subscribing must keep working when Redis is down (ARCHITECTURE.md).

- Per client (``subscribe_throttles_check``, a plain function, so that every entry point applies
  it the same way: the Checkout API's DRF throttle, the GraphQL mutation): counts every request,
  before it is read. Over the limit it raises ``SubscribeThrottled`` with the wait, which the
  API renders as ``429`` with ``Retry-After``.
- Per address (``email_throttle_slot``, applied by ``subscription_create`` for every entry
  point): counts only the subscriptions a valid request creates. Its key is the mailbox the
  address delivers to (``email_throttle_key``): ``carol+1`` … ``carol+12``, and Gmail's dotted
  spellings ``a.n.n@googlemail.com`` and ``ann@gmail.com``, are one person asking again. The
  limit is on how many subscriptions one address can be given, which is what a flood of
  someone's address over many sizes abuses; a repeat of an existing subscription (idempotent,
  CONTRACT §3) gives it nothing, so replaying a shopper's request cannot lock them out.

The per-address rule, and why it is race-safe: a request takes a place in the address's window
before it inserts (an atomic check-and-increment, refused when the window is full), and gives
the place back when its insert found the subscription already there (or failed). Concurrent
requests for many sizes therefore never create more than the limit, whereas counting only after
an insert could be overtaken by every request in flight. While a window is full, a repeat is
refused like a new size: a 201 for a repeat next to a 429 for a new size would tell whether the
address is subscribed. Both outcomes (kept or given back) cost the same one round trip, so that
the timing does not tell them apart either. The one cost: a place is held for the few
milliseconds a request takes, so a flood of concurrent replays can make a request arriving in
that instant see a full window; the per-client throttle bounds such floods, and nothing is held
once they stop.

On Redis each step is one round trip (a small Lua script); the cache API's ``add`` and ``incr``
take three per throttle (``incr`` checks that the key exists first), each with a new client
object, and these throttles run on every subscribe request (bench/README.md, "Load").
"""

import contextlib
import functools
import hashlib
import logging
import time
import weakref
from collections.abc import Iterator
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


# The scripts below, bound to one redis-py client per cache backend object (each thread has
# its own backend, see django.core.cache.caches). ``RedisCacheClient.get_client`` builds a new
# client object on every call, which costs more than the round trip; the connection pool behind
# the kept client is the backend's, with its timeouts.
_redis_scripts: "weakref.WeakKeyDictionary[Any, dict[str, Any]]" = weakref.WeakKeyDictionary()


def _redis_script(backend: RedisCache, source: str, key: str) -> Any:
    """``source`` registered on a client of ``backend`` (kept per backend, see above)."""
    scripts = _redis_scripts.setdefault(backend, {})
    script = scripts.get(source)
    if script is None:
        client = backend._cache.get_client(key, write=True)  # type: ignore[attr-defined]
        script = scripts[source] = client.register_script(source)
    return script


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
    script = _redis_script(backend, _WINDOW_COUNT_SCRIPT, keys[0])
    return [int(count) for count in script(keys=keys, args=[p + 1 for _, p in windows])]


# Take a place in a window unless it is full: 0 when full, else the count with this place.
_PLACE_TAKE_SCRIPT = """
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count >= tonumber(ARGV[1]) then return 0 end
count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return count
"""
# Keep (ARGV[1] '0') or give back ('1') a place taken; never below zero, and never a key brought
# back to life without an expiry once its window has ended. Both do the same work.
_PLACE_SETTLE_SCRIPT = """
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if ARGV[1] == '1' and count > 0 then return redis.call('DECR', KEYS[1]) end
return count
"""


def window_place_take(*, key: str, limit: int, period: int) -> bool:
    """Take one place in the window ``key`` (of ``limit`` places, ``period`` seconds) unless full.

    Atomic on Redis (one round trip), so concurrent callers never take more than ``limit``
    places; a refused caller takes none. Returns whether a place was taken. Raises if the cache
    fails.
    """
    backend = caches[DEFAULT_CACHE_ALIAS]
    if not isinstance(backend, RedisCache):
        # Local memory (development, the demo): one process, nothing to race with but threads.
        if (backend.get(key) or 0) >= limit:
            return False
        backend.add(key, 0, timeout=period + 1)
        backend.incr(key)
        return True
    full_key = backend.make_and_validate_key(key)
    script = _redis_script(backend, _PLACE_TAKE_SCRIPT, full_key)
    return int(script(keys=[full_key], args=[limit, period + 1])) > 0


def window_place_settle(*, key: str, give_back: bool) -> None:
    """Keep the place taken in the window ``key``, or give it back (``give_back``).

    One round trip on Redis either way. A window that has ended is left alone. Raises if the
    cache fails.
    """
    backend = caches[DEFAULT_CACHE_ALIAS]
    if not isinstance(backend, RedisCache):
        if give_back and (backend.get(key) or 0) > 0:
            with contextlib.suppress(ValueError):  # expired in between
                backend.decr(key)
        return
    full_key = backend.make_and_validate_key(key)
    script = _redis_script(backend, _PLACE_SETTLE_SCRIPT, full_key)
    script(keys=[full_key], args=["1" if give_back else "0"])


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


def subscribe_throttles_check(*, client: str) -> None:
    """Count one subscribe request of ``client``; raise ``SubscribeThrottled`` if over its limit.

    ``client`` is the client's identity (its IP address, as DRF's ``get_ident`` gives it). Every
    request counts, valid or not. If the cache cannot be reached, logs a warning and returns
    (fail open). The per-address throttle is ``email_throttle_slot``.
    """
    now = time.time()
    window = _window(scope=SCOPE_CLIENT, identity=client, now=now) if client else None
    if window is None:
        return
    try:
        [count] = window_counts([(window.key, window.period)])
    except Exception:  # any cache failure: fail open, visibly
        logger.warning(
            "throttle %s: cache unreachable, request let through", window.scope, exc_info=True
        )
        return
    if count > window.limit:
        raise SubscribeThrottled(wait=window.ends_at - now)


@dataclass
class EmailThrottleSlot:
    """A place in an address's window, held while a request stores its subscription.

    ``keep()`` once the request created a subscription; a slot left unkept is given back.
    """

    window: _Window | None  # None: the throttle is off, or the cache could not be reached
    kept: bool = False

    def keep(self) -> None:
        self.kept = True


@contextlib.contextmanager
def email_throttle_slot(*, email: str) -> Iterator[EmailThrottleSlot]:
    """The per-address throttle around storing one subscription for ``email`` (canonical).

    On entry takes a place in the window of the address's mailbox (``email_throttle_key``), or
    raises ``SubscribeThrottled`` with the wait when the window is full (for a repeat as for a
    new subscription). On exit keeps the place if the block called ``slot.keep()`` (it created a
    subscription), else gives it back: repeats and failed requests use up nothing. The rule and
    why it is race-safe: this module's docstring. If the cache cannot be reached, logs a warning
    and lets the request through (fail open).
    """
    now = time.time()
    window = _window(scope=SCOPE_EMAIL, identity=email_throttle_key(email), now=now)
    if window is not None:
        try:
            taken = window_place_take(key=window.key, limit=window.limit, period=window.period)
        except Exception:  # any cache failure: fail open, visibly
            logger.warning(
                "throttle %s: cache unreachable, request let through", window.scope, exc_info=True
            )
            window = None
        else:
            if not taken:
                raise SubscribeThrottled(wait=window.ends_at - now)
    slot = EmailThrottleSlot(window=window)
    try:
        yield slot
    finally:
        if slot.window is not None:
            try:
                window_place_settle(key=slot.window.key, give_back=not slot.kept)
            except Exception:  # the place stays taken until its window ends
                logger.warning(
                    "throttle %s: cache unreachable, place not settled",
                    slot.window.scope,
                    exc_info=True,
                )


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
