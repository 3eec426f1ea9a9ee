"""Startup checks: a malformed throttle rate is reported at start, not on the first request."""

from typing import Any

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from backinstock.throttling import rate_parse


@checks.register(checks.Tags.security)
def check_subscribe_rates(**kwargs: Any) -> list[checks.CheckMessage]:
    problems: list[checks.CheckMessage] = []
    for name in ("SUBSCRIBE_RATE_PER_CLIENT", "SUBSCRIBE_RATE_PER_EMAIL"):
        try:
            rate_parse(getattr(settings, name))
        except ImproperlyConfigured as exc:
            problems.append(checks.Error(f"{name}: {exc}", id="backinstock.E001"))
    return problems
