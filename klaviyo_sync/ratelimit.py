"""One outbound rate limiter for every worker, per Klaviyo rate class (KLAVIYO.md).

Klaviyo counts per account, with a burst limit per second and a steady limit per minute. Each
call first ``acquire``s a slot of its class; the limiter waits rather than fails. With
``REDIS_URL`` set, the slots are a sliding-window log in Redis shared by all processes (one
atomic Lua script, Redis's clock), so ten workers together stay inside the quota instead of each
hitting 429s. Without Redis (the demo) the same algorithm runs in-process. If Redis cannot be
reached, the process falls back to its own in-process window and logs it: sends go on, at worst
one process's share over the limit, which Klaviyo answers with 429 and the client retries.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Literal

from django.conf import settings

from operations.metrics import metric_count

logger = logging.getLogger(__name__)

RateClass = Literal[
    "catalog_write",
    "catalog_job_read",
    "catalog_read",
    "back_in_stock",
    "profile_import",
    "profile_bulk_import",
    "data_privacy",
    "accounts",
]

# (burst per second, steady per minute), from KLAVIYO.md and Klaviyo's endpoint docs.
KLAVIYO_RATE_LIMITS: dict[str, tuple[int, int]] = {
    "catalog_write": (75, 750),
    "catalog_job_read": (75, 750),
    "catalog_read": (350, 3500),
    "back_in_stock": (350, 3500),
    "profile_import": (75, 700),
    # Creating and reading profile bulk import jobs (up to 10,000 profiles each).
    "profile_bulk_import": (10, 150),
    "data_privacy": (3, 60),
    "accounts": (1, 15),
}

# Klaviyo counts a call when it arrives, in windows aligned to its clock; ours counts it when it
# is let out. A call let out just inside our window and delayed on its way (a busy worker thread,
# the network, a busy server) can arrive in Klaviyo's next window and overfill it: three 429s in
# a burst of 10,000 on this machine without a margin, one with 0.1 s (bench/subscription_burst.py,
# the sandbox answering 350 calls a second). So each window is counted this much longer than
# Klaviyo's: a call waits until its window's calls are this much older.
TRANSIT_MARGIN_SECONDS = 0.25
_MARGIN_MS = int(TRANSIT_MARGIN_SECONDS * 1000)

# Returns 0 and records the call when both windows have room, else the milliseconds to wait.
# ARGV[4]: the transit margin in milliseconds.
_ACQUIRE_SCRIPT = """
local key = KEYS[1]
local per_second = tonumber(ARGV[1])
local per_minute = tonumber(ARGV[2])
local member = ARGV[3]
local minute = 60000 + tonumber(ARGV[4])
local second = 1000 + tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - minute)
local in_minute = redis.call('ZCARD', key)
local in_second = redis.call('ZCOUNT', key, now - second + 1, '+inf')
local wait = 0
if in_minute >= per_minute then
  local index = in_minute - per_minute
  local oldest = redis.call('ZRANGE', key, index, index, 'WITHSCORES')
  wait = math.max(wait, tonumber(oldest[2]) + minute - now)
end
if in_second >= per_second then
  local first = redis.call('ZRANGEBYSCORE', key, now - second + 1, '+inf',
                           'WITHSCORES', 'LIMIT', in_second - per_second, 1)
  wait = math.max(wait, tonumber(first[2]) + second - now)
end
if wait > 0 then
  return wait
end
redis.call('ZADD', key, now, member)
redis.call('PEXPIRE', key, minute + 1000)
return 0
"""


class RateLimiter:
    """``acquire(rate_class)`` blocks until a call of that class may go out."""

    def __init__(
        self,
        *,
        limits: dict[str, tuple[int, int]] | None = None,
        redis_url: str = "",
        key_prefix: str = "klaviyo-rate",
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.limits = dict(limits or KLAVIYO_RATE_LIMITS)
        self.key_prefix = key_prefix
        self._sleep = sleep
        self._local = _LocalWindows()
        self._redis = None
        self._script = None
        if redis_url:
            import redis

            self._redis = redis.Redis.from_url(
                redis_url, socket_connect_timeout=0.5, socket_timeout=1.0
            )
            self._script = self._redis.register_script(_ACQUIRE_SCRIPT)

    def acquire(self, rate_class: str) -> float:
        """Wait for a slot; returns the seconds waited."""
        per_second, per_minute = self.limits[rate_class]
        waited = 0.0
        while True:
            wait_ms = self._try(rate_class, per_second, per_minute)
            if wait_ms <= 0:
                metric_count("klaviyo_rate_limiter_wait_seconds", waited, rate_class=rate_class)
                return waited
            pause = wait_ms / 1000.0
            self._sleep(pause)
            waited += pause

    def _try(self, rate_class: str, per_second: int, per_minute: int) -> float:
        if self._script is not None:
            try:
                return float(
                    self._script(
                        keys=[f"{self.key_prefix}:{rate_class}"],
                        args=[per_second, per_minute, uuid.uuid4().hex, _MARGIN_MS],
                    )
                )
            except Exception:  # Redis down: fall back to this process's own windows
                logger.warning(
                    "rate limiter: Redis unreachable, limiting in-process", exc_info=True
                )
        return self._local.try_acquire(rate_class, per_second, per_minute)


class _LocalWindows:
    """The same sliding-window log, for one process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[str, deque[float]] = {}

    def try_acquire(self, rate_class: str, per_second: int, per_minute: int) -> float:
        with self._lock:
            now = time.monotonic()
            minute, second = 60 + TRANSIT_MARGIN_SECONDS, 1 + TRANSIT_MARGIN_SECONDS
            calls = self._calls.setdefault(rate_class, deque())
            while calls and calls[0] <= now - minute:
                calls.popleft()
            wait = 0.0
            if len(calls) >= per_minute:
                wait = max(wait, calls[len(calls) - per_minute] + minute - now)
            recent = [t for t in calls if t > now - second]
            if len(recent) >= per_second:
                wait = max(wait, recent[len(recent) - per_second] + second - now)
            if wait > 0:
                return wait * 1000
            calls.append(now)
            return 0.0


_shared: RateLimiter | None = None
_shared_lock = threading.Lock()


def rate_limiter_from_settings() -> RateLimiter:
    """The process's limiter, shared through Redis when ``REDIS_URL`` is set."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = RateLimiter(
                limits={**KLAVIYO_RATE_LIMITS, **getattr(settings, "KLAVIYO_RATE_LIMITS", {})},
                redis_url=settings.REDIS_URL,
            )
        return _shared
