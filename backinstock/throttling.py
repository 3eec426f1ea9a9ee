"""Throttles of subscribing: per client and per address.

Fixed windows counted in the cache (Redis in production), so every web process shares one
count. If the cache cannot be reached the request is let through and the outage is logged:
subscribing must keep working when Redis is down (ARCHITECTURE.md).

- Per client (``client_throttled``, around the whole request at every entry point that has one:
  the Checkout API, the GraphQL mutation): every request counts, valid or not. Over the limit
  the request raises ``SubscribeThrottled`` with the wait, which the API renders as ``429`` with
  ``Retry-After``. A process that has refused a client remembers it until the window ends and
  refuses it again before reading its request, so a flood from one client costs neither Redis
  nor the database.
- Per address (``subscribe_throttles_take``, called by ``subscription_create`` for every entry
  point once the request is valid): the window holds the distinct subscriptions an address has
  asked for in it, new or existing, each once. Its key is the mailbox the address delivers to
  (``email_throttle_key``): ``carol+1`` … ``carol+12``, and Gmail's dotted spellings
  ``a.n.n@googlemail.com`` and ``ann@gmail.com``, are one person asking again. The limit is on
  how many subscriptions one address can be given, which is what a flood of someone's address
  over many sizes abuses; replaying one subscription any number of times takes one place, so
  replaying a shopper's request cannot lock them out, and a failed insert retried takes no
  second place.

The per-address rule, and why it is race-safe: a request adds its subscription (a hash of the
canonical address and the back-in-stock variant) to the address's window before it inserts, in
one atomic step that refuses when the window is full. Concurrent requests for many sizes
therefore never create more than the limit. While a window is full, a repeat is refused like a
new size: a 201 for a repeat next to a 429 for a new size would tell whether the address is
subscribed; a new and a repeated subscription do the same Redis work, so the timing does not
tell them apart either. The one place ever given back (``subscribe_throttle_give_back``) is a
request's own new place when the catalog, asked again, refuses it after all (a web process's
kept answer named a row deleted since: ``backinstock.services.subscription_create``).

A valid request of a client-throttled entry point does both in one Redis round trip (a small Lua
script); a request refused before it reaches the per-address step is counted against its client
on its way out. The cache API's ``add`` and ``incr`` would take three round trips per throttle,
each with a new client object, on every subscribe request (bench/README.md, "Load").
"""

import contextlib
import functools
import hashlib
import logging
import threading
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

from backinstock.emails import email_throttle_key
from config.process_cache import ExpiringMemory

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


def _redis_client(backend: RedisCache, key: str) -> Any:
    """The redis-py client ``backend`` writes ``key`` with (Django keeps one per server)."""
    return backend._cache.get_client(key, write=True)  # type: ignore[attr-defined]


def _redis_script(backend: RedisCache, source: str, key: str) -> Any:
    """``source`` registered on a client of ``backend`` (kept per backend, see above)."""
    scripts = _redis_scripts.setdefault(backend, {})
    script = scripts.get(source)
    if script is None:
        script = scripts[source] = _redis_client(backend, key).register_script(source)
    return script


# Atomic in Redis: the first hit of a window creates its key and sets the key's expiry.
_WINDOW_COUNT_SCRIPT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return count
"""


def window_count(*, key: str, period: int) -> int:
    """Count one more hit in the window ``key`` of ``period`` seconds; returns the count.

    The same as ``cache.add(key, 0, period + 1)`` then ``cache.incr(key)``. On Redis one round
    trip: a small script (``EVALSHA``) run atomically, so the key can never lose its expiry
    between the two steps. Raises if the cache fails.
    """
    backend = caches[DEFAULT_CACHE_ALIAS]
    if not isinstance(backend, RedisCache):
        backend.add(key, 0, timeout=period + 1)
        return int(backend.incr(key))
    full_key = backend.make_and_validate_key(key)
    script = _redis_script(backend, _WINDOW_COUNT_SCRIPT, full_key)
    return int(script(keys=[full_key], args=[period + 1]))


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
    digest = _digest(identity)
    return _Window(
        scope=scope,
        key=f"throttle:{scope}:{digest}:{window}",
        limit=limit,
        period=period,
        ends_at=(window + 1) * period,
    )


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


# --- a cache outage ------------------------------------------------------------------------------

# After a cache failure this process lets subscribe requests through without asking the cache
# for this long: a cache that hangs would otherwise cost every request its socket timeout
# (250 ms), and a site's throughput with it. Clients refused earlier stay refused meanwhile.
CACHE_OUTAGE_PAUSE_SECONDS = 5.0
_cache_paused_until = 0.0


def _cache_paused() -> bool:
    return time.monotonic() < _cache_paused_until


def _cache_failed(scope: str) -> None:
    global _cache_paused_until
    _cache_paused_until = time.monotonic() + CACHE_OUTAGE_PAUSE_SECONDS
    logger.warning(
        "throttle %s: cache unreachable, requests let through for %.0f s",
        scope,
        CACHE_OUTAGE_PAUSE_SECONDS,
        exc_info=True,
    )


def cache_outage_forget() -> None:
    """Ask the cache again from the next request (tests; an operator who fixed the cache)."""
    global _cache_paused_until
    _cache_paused_until = 0.0


# --- per client -------------------------------------------------------------------------------

# Clients this process refused: the end of their window (``time.time()``), by window and limit.
_clients_refused = ExpiringMemory()


def client_refusals_forget() -> None:
    """Forget the clients this process refused (tests; a changed limit takes effect at once)."""
    _clients_refused.clear()


def _refusal_key(window: _Window) -> str:
    return f"{window.key}:{window.limit}"


def _client_refused(window: _Window, now: float) -> SubscribeThrottled:
    """Remember the refusal until the window ends; the exception to raise."""
    _clients_refused.put(_refusal_key(window), window.ends_at, now=now, until=window.ends_at)
    return SubscribeThrottled(wait=window.ends_at - now)


@dataclass
class ClientThrottle:
    """The per-client throttle of one subscribe request, counted once: by
    ``subscribe_throttles_take`` together with the address's, or by ``client_throttled`` on the
    way out of a request that did not get that far. ``window`` None: the throttle is off."""

    window: _Window | None
    now: float
    counted: bool = False

    def count(self) -> None:
        """Count the request now (one round trip); ``SubscribeThrottled`` if over the limit.
        Fails open: an unreachable cache is logged and the request let through."""
        if self.counted:
            return
        self.counted = True
        if self.window is None:
            return
        if _cache_paused():
            return
        try:
            count = window_count(key=self.window.key, period=self.window.period)
        except Exception:  # any cache failure: fail open, visibly
            _cache_failed(self.window.scope)
            return
        if count > self.window.limit:
            raise _client_refused(self.window, self.now)


@contextlib.contextmanager
def client_throttled(*, client: str) -> Iterator[ClientThrottle]:
    """The per-client throttle around one subscribe request of ``client`` (its IP address, as
    DRF's ``get_ident`` gives it).

    Raises ``SubscribeThrottled`` at once when this process refused the client earlier in the
    same window. The block passes the yielded ``ClientThrottle`` to ``subscription_create``,
    which counts it with the per-address throttle in one round trip; if the block raises before
    that (invalid input, back in stock off), the request is counted here, and over the limit its
    error becomes ``SubscribeThrottled``: every request counts, and a throttled client gets 429
    whatever it sent.
    """
    now = time.time()
    window = _window(scope=SCOPE_CLIENT, identity=client, now=now) if client else None
    if window is not None:
        ends_at = _clients_refused.get(_refusal_key(window), now=now)
        if ends_at is not None:
            raise SubscribeThrottled(wait=ends_at - now)
    throttle = ClientThrottle(window=window, now=now)
    try:
        yield throttle
    except SubscribeThrottled:
        raise
    except Exception as exc:
        if not throttle.counted:
            try:
                throttle.count()
            except SubscribeThrottled as throttled:
                raise throttled from exc
        raise


# --- per address, with the client's count -------------------------------------------------------

# KEYS: the client's window (when ARGV[1] is '1'), then the address's window (when there is one).
# ARGV: counting the client '1'/'0', its TTL and limit; the address's TTL and limit; the member.
# Answers 2 taken (the member is new in the address's window), 1 taken (it was there already, or
# there is no address window), 0 the address's window full, -1 the client over its limit.
_TAKE_SCRIPT = """
local n = 1
if ARGV[1] == '1' then
    local count = redis.call('INCR', KEYS[1])
    if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
    if count > tonumber(ARGV[3]) then return -1 end
    n = 2
end
if KEYS[n] then
    local size = redis.call('SCARD', KEYS[n])
    if size >= tonumber(ARGV[5]) then return 0 end
    local added = redis.call('SADD', KEYS[n], ARGV[6])
    if size == 0 then redis.call('EXPIRE', KEYS[n], ARGV[4]) end
    return 1 + added
end
return 1
"""

_local_lock = threading.Lock()  # the local-memory cache's stand-in for the script's atomicity


def _take_locally(client: _Window | None, address: _Window | None, member: str) -> int:
    """``_TAKE_SCRIPT`` on Django's local-memory cache (development, the demo: one process)."""
    backend = caches[DEFAULT_CACHE_ALIAS]
    with _local_lock:
        if client is not None and window_count(key=client.key, period=client.period) > client.limit:
            return -1
        if address is not None:
            members = backend.get(address.key) or frozenset()
            if len(members) >= address.limit:
                return 0
            backend.set(address.key, members | {member}, timeout=address.period + 1)
            return 1 if member in members else 2
    return 1


@dataclass(frozen=True)
class AddressPlace:
    """A place a subscription took in its address's window (``subscribe_throttles_take``)."""

    key: str  # the window's cache key (before the backend's prefix)
    period: int  # the window's length, seconds
    member: str  # the hash of the canonical address and the variant


def subscribe_throttle_give_back(place: AddressPlace | None) -> None:
    """Give back a place taken for a request that turned out invalid after all (``None``:
    nothing was taken, or the subscription had its place already). Fails open, like the take."""
    if place is None or _cache_paused():
        return
    try:
        backend = caches[DEFAULT_CACHE_ALIAS]
        if isinstance(backend, RedisCache):
            key = backend.make_and_validate_key(place.key)
            _redis_client(backend, key).srem(key, place.member)
        else:
            with _local_lock:
                members = backend.get(place.key) or frozenset()
                backend.set(place.key, members - {place.member}, timeout=place.period + 1)
    except Exception:  # any cache failure: the place stays taken until its window ends
        _cache_failed(SCOPE_EMAIL)


def subscribe_throttles_take(
    *, email: str, variant: str, client_throttle: ClientThrottle | None
) -> AddressPlace | None:
    """Take the subscription's place in its address's window, and count the request against its
    client (``client_throttle``, unless None or counted already): one round trip on Redis.

    ``email``: the canonical address; ``variant``: the back-in-stock variant's external id.
    Raises ``SubscribeThrottled`` with the wait when the client is over its limit (the address's
    window is then left alone) or the address's window is full (for a repeat as for a new
    subscription). The rule and why it is race-safe: this module's docstring. If the cache
    cannot be reached, logs a warning and lets the request through (fail open). Returns the
    place taken, for ``subscribe_throttle_give_back``, when the subscription was new in its
    address's window; else None.
    """
    now = time.time()
    address = _window(scope=SCOPE_EMAIL, identity=email_throttle_key(email), now=now)
    client = None
    if client_throttle is not None and not client_throttle.counted:
        client_throttle.counted = True
        client = client_throttle.window
    if client is None and address is None:
        return None
    member = _digest(f"{email}\n{variant}")
    if _cache_paused():
        return None
    try:
        backend = caches[DEFAULT_CACHE_ALIAS]
        if isinstance(backend, RedisCache):
            windows = [window for window in (client, address) if window is not None]
            keys = [backend.make_and_validate_key(window.key) for window in windows]
            script = _redis_script(backend, _TAKE_SCRIPT, keys[0])
            args = [
                "1" if client is not None else "0",
                client.period + 1 if client else 0,
                client.limit if client else 0,
                address.period + 1 if address else 0,
                address.limit if address else 0,
                member,
            ]
            outcome = int(script(keys=keys, args=args))
        else:
            outcome = _take_locally(client, address, member)
    except Exception:  # any cache failure: fail open, visibly
        _cache_failed(SCOPE_EMAIL)
        return None
    if outcome == -1:
        assert client is not None
        raise _client_refused(client, now)
    if outcome == 0:
        assert address is not None
        raise SubscribeThrottled(wait=address.ends_at - now)
    if outcome == 2:
        assert address is not None
        return AddressPlace(key=address.key, period=address.period, member=member)
    return None
