"""Throttles of the subscribe endpoints: per client and per email address.

Fixed windows counted with the cache's atomic ``incr`` (Redis in production), so every web
process shares one count. If the cache cannot be reached the request is let through and the
outage is logged: subscribing must keep working when Redis is down (ARCHITECTURE.md).
"""

import hashlib
import logging
import time
from typing import Any, ClassVar

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
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


class _FixedWindowThrottle(BaseThrottle):
    scope: ClassVar[str]
    rate_setting: ClassVar[str]

    def __init__(self) -> None:
        self.wait_seconds: float | None = None

    def identity(self, request: Request) -> str | None:
        raise NotImplementedError

    def allow_request(self, request: Request, view: Any) -> bool:
        rate = rate_parse(getattr(settings, self.rate_setting))
        if rate is None:
            return True
        identity = self.identity(request)
        if identity is None:
            return True
        limit, period = rate
        now = time.time()
        window = int(now // period)
        digest = hashlib.sha256(identity.encode()).hexdigest()[:32]
        key = f"throttle:{self.scope}:{digest}:{window}"
        try:
            cache.add(key, 0, timeout=period + 1)
            count = cache.incr(key)
        except Exception:  # any cache failure: fail open, visibly
            logger.warning(
                "throttle %s: cache unreachable, request let through", self.scope, exc_info=True
            )
            return True
        if count > limit:
            self.wait_seconds = (window + 1) * period - now
            return False
        return True

    def wait(self) -> float | None:
        return self.wait_seconds


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
        email = data.get("email") if isinstance(data, dict) else None
        if not isinstance(email, str) or not email.strip():
            return None
        return email_match_key(email)
