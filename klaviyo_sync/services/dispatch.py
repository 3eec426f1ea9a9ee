"""The dispatcher: pending subscriptions become pushes outside the request (the outbox).

The subscribe request writes the row and answers; it never waits on the broker. Every second
(``KLAVIYO_DISPATCH_SECONDS``) the scheduler runs ``subscriptions_dispatch`` in a worker: it
claims a batch of pending subscriptions (``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL, so
workers on several machines share the outbox without taking the same row), sends their
back-in-stock subscriptions side by side (Klaviyo allows 350 a second; the shared rate limiter
keeps every worker inside that), follows the unfinished profile jobs, and sends the profiles of
the newly subscribed in one profile bulk import job.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from backinstock.models import Subscription, SubscriptionStatus
from klaviyo_sync.client import KlaviyoClient, KlaviyoError
from klaviyo_sync.selectors import integration_settings_get
from klaviyo_sync.services.profiles import profile_jobs_follow, profiles_send
from klaviyo_sync.services.subscriptions import (
    NotSoldThere,
    back_in_stock_variant_ensure,
    subscription_claimed_push,
    subscription_push_error,
)

logger = logging.getLogger(__name__)

DISPATCH_BATCH = 500
# Back-in-stock subscription calls on the wire at once: each waits tens to hundreds of
# milliseconds for Klaviyo, so a few side by side make the rate limiter the bound.
SEND_CONCURRENCY = 8


@dataclass
class DispatchResult:
    claimed: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    profile_jobs_finished: int = 0
    profiles_sent: int = 0


def subscriptions_claim(*, limit: int) -> list[int]:
    """Claim up to ``limit`` pending subscriptions nobody is pushing; returns their ids.

    Each claim is a lease of ``KLAVIYO_PUSH_LEASE_SECONDS`` and counts one attempt. A
    subscription held for a retry (its lease set to the retry time) is left until then.
    """
    now = timezone.now()
    with transaction.atomic():
        ids = list(
            Subscription.objects.filter(status=SubscriptionStatus.PENDING)
            .filter(Q(push_claimed_until__isnull=True) | Q(push_claimed_until__lt=now))
            .order_by("id")
            .select_for_update(skip_locked=True)
            .values_list("id", flat=True)[:limit]
        )
        Subscription.objects.filter(id__in=ids).update(
            push_claimed_until=now + timedelta(seconds=settings.KLAVIYO_PUSH_LEASE_SECONDS),
            attempts=F("attempts") + 1,
        )
    return ids


def subscriptions_dispatch(
    *, client: KlaviyoClient | None = None, limit: int = DISPATCH_BATCH
) -> DispatchResult:
    """Push a batch of pending subscriptions and move their profiles along; see the module.

    Raises ``KlaviyoNotConfigured`` without claiming anything while there is no key or the
    URL is invalid (``KlaviyoClient.configuration_check``).
    """
    client = client or KlaviyoClient.from_settings()
    client.configuration_check()
    result = DispatchResult()
    result.profile_jobs_finished = profile_jobs_follow(client=client)
    ids = subscriptions_claim(limit=limit)
    result.claimed = len(ids)
    if ids:
        ensured = _variants_ensure(subscription_ids=ids, client=client)
        result.outcomes = _send_side_by_side(pushes=[(i, i in ensured) for i in ids], client=client)
    job = profiles_send(client=client)
    result.profiles_sent = job.entries.count() if job is not None else 0
    return result


def _variants_ensure(*, subscription_ids: list[int], client: KlaviyoClient) -> set[int]:
    """Make each distinct variant of the batch exist once, before the sends run side by side;
    returns the subscriptions whose variant now exists.

    A variant that cannot be made to exist here fails again, with its error recorded, in the
    push of each of its subscriptions.
    """
    settings_record = integration_settings_get()
    outcome: dict[int, bool] = {}
    ensured: set[int] = set()
    for subscription in Subscription.objects.filter(
        id__in=subscription_ids, subscription_sent_at__isnull=True
    ).select_related("variant__product"):
        if subscription.variant_id not in outcome:
            try:
                back_in_stock_variant_ensure(
                    client=client, variant=subscription.variant, settings_record=settings_record
                )
                outcome[subscription.variant_id] = True
            except (KlaviyoError, NotSoldThere) as exc:
                logger.info("%s not made to exist yet: %s", subscription.variant, exc)
                outcome[subscription.variant_id] = False
        if outcome[subscription.variant_id]:
            ensured.add(subscription.id)
    return ensured


def _send_side_by_side(*, pushes: list[tuple[int, bool]], client: KlaviyoClient) -> Counter[str]:
    """Push (subscription id, variant ensured) pairs on ``SEND_CONCURRENCY`` threads; returns
    how many ended how. Each thread opens one database connection for the whole batch (one per
    subscription cost more than the rest of its push) and closes it when the batch is done."""
    waiting = deque(pushes)
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()

    def send() -> None:
        try:
            while True:
                with lock:
                    if not waiting:
                        return
                    subscription_id, ensured = waiting.popleft()
                outcome = _push_claimed(subscription_id, ensured, client)
                with lock:
                    outcomes[outcome] += 1
        finally:
            connection.close()

    threads = [
        threading.Thread(target=send, name=f"klaviyo-push-{number}")
        for number in range(min(SEND_CONCURRENCY, len(pushes)))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def _push_claimed(subscription_id: int, variant_ensured: bool, client: KlaviyoClient) -> str:
    try:
        subscription_claimed_push(
            subscription_id=subscription_id, client=client, variant_ensured=variant_ensured
        )
        return "subscribed"
    except (KlaviyoError, NotSoldThere) as exc:
        return subscription_push_error(subscription_id=subscription_id, error=exc)
