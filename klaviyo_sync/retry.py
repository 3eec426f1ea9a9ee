"""Retrying what can succeed later: bounded exponential backoff with full jitter (STYLE.md §6)."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from klaviyo_sync.client import KlaviyoRetryableError

logger = logging.getLogger(__name__)

BACKOFF_BASE_SECONDS = 1.0
BACKOFF_CAP_SECONDS = 300.0
IN_PROCESS_ATTEMPTS = 8
IN_PROCESS_CAP_SECONDS = 30.0
# Celery on RabbitMQ quorum queues delays a task by whole seconds (native delayed delivery) and
# rejects, dropping it, a countdown above 0 and below 1 s.
MIN_TASK_COUNTDOWN_SECONDS = 1.0

T = TypeVar("T")


def backoff_seconds(
    attempt: int, *, retry_after: float | None = None, cap: float = BACKOFF_CAP_SECONDS
) -> float:
    """Seconds before try ``attempt + 1``: full jitter over 1 s, 2 s, 4 s, ... up to ``cap``.

    Klaviyo's ``Retry-After`` is a floor: waiting less would only earn another 429.
    """
    ceiling = min(cap, BACKOFF_BASE_SECONDS * (2 ** max(attempt - 1, 0)))
    delay = random.uniform(0, ceiling)  # noqa: S311  (jitter, not cryptography)
    return max(delay, retry_after or 0.0)


def task_countdown(seconds: float) -> float:
    """A countdown for ``apply_async``/``retry`` that every broker accepts: at least 1 s."""
    return max(seconds, MIN_TASK_COUNTDOWN_SECONDS)


def call_with_retries(
    call: Callable[[], T],
    *,
    attempts: int = IN_PROCESS_ATTEMPTS,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``call``, retrying retryable Klaviyo errors in this process; others propagate."""
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except KlaviyoRetryableError as exc:
            if attempt == attempts:
                raise
            delay = backoff_seconds(
                attempt, retry_after=exc.retry_after, cap=IN_PROCESS_CAP_SECONDS
            )
            logger.info("Klaviyo call failed (%s); retry %d in %.1fs", exc, attempt, delay)
            sleep(delay)
    raise AssertionError("unreachable")
