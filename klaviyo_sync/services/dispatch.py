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

import contextlib
import logging
import queue
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from backinstock.models import Subscription, SubscriptionStatus
from backinstock.services import erased_address_pushed
from config.correlation import correlation_id_set
from klaviyo_sync.client import (
    KlaviyoClient,
    KlaviyoError,
    KlaviyoNotConfigured,
    KlaviyoRetryableError,
)
from klaviyo_sync.payloads import back_in_stock_subscription_body
from klaviyo_sync.services.back_in_stock_catalog import (
    NotSoldThere,
    back_in_stock_variants_ensure,
)
from klaviyo_sync.services.profiles import profile_jobs_follow, profiles_send
from klaviyo_sync.services.sent import klaviyo_says_missing
from klaviyo_sync.services.subscriptions import (
    PushLeaseKeeper,
    subscription_claimed_push,
    subscription_push_error,
    subscription_push_released,
    subscriptions_accepted,
)

logger = logging.getLogger(__name__)

DISPATCH_BATCH = 500
# Back-in-stock subscription calls on the wire at once: each waits tens to hundreds of
# milliseconds for Klaviyo, so a few side by side make the rate limiter the bound.
SEND_CONCURRENCY = 8
# Accepted subscriptions are marked ``subscribed`` together, at least this often and in lots of
# at most this many: a worker killed in between sends those again (Klaviyo takes a repeated
# back-in-stock subscription as the same one), never loses them.
ACCEPTED_RECORD_SECONDS = 0.5
ACCEPTED_RECORD_LOT = 200


@dataclass(frozen=True)
class _Claimed:
    """A claimed subscription as its send needs it (read once for the batch)."""

    id: int
    email: str
    correlation_id: str
    variant_external_id: str
    sent_at: datetime | None
    # The batch could not make the variant exist for a reason that may pass (a 429, a 5xx, a
    # dropped connection): the push tries again on its own, as if alone, so that one passing
    # fault costs one subscription an attempt, not every subscription of the variant.
    ensure_again: bool = False


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

    The batch's variants are made to exist first, together
    (``back_in_stock_variants_ensure``); then only the back-in-stock subscription calls run,
    side by side, and the accepted ones are recorded a lot at a time
    (``subscriptions_accepted``). Raises ``KlaviyoNotConfigured`` without claiming anything
    while there is no key or the URL is invalid (``KlaviyoClient.configuration_check``).
    """
    client = client or KlaviyoClient.from_settings()
    client.configuration_check()
    result = DispatchResult()
    result.profile_jobs_finished = profile_jobs_follow(client=client)
    ids = subscriptions_claim(limit=limit)
    result.claimed = len(ids)
    if ids:
        with PushLeaseKeeper(ids):
            result.outcomes = _batch_push(claimed=_claimed_read(ids), client=client)
    try:
        job = profiles_send(client=client)
    except KlaviyoNotConfigured:
        raise
    except KlaviyoError as exc:  # the profiles wait for the next dispatch; the pushes went on
        logger.warning("profiles not sent yet: %s", exc)
        job = None
    result.profiles_sent = job.entries.count() if job is not None else 0
    return result


def _claimed_read(ids: list[int]) -> list[_Claimed]:
    return [
        _Claimed(*row)
        for row in Subscription.objects.filter(id__in=ids)
        .order_by("id")
        .values_list(
            "id", "email", "correlation_id", "variant__external_id", "subscription_sent_at"
        )
    ]


def _batch_push(*, claimed: list[_Claimed], client: KlaviyoClient) -> Counter[str]:
    """Ensure the batch's variants, then send; returns how many pushes ended how."""
    outcomes: Counter[str] = Counter()
    not_ensured = back_in_stock_variants_ensure(
        client=client,
        external_ids={c.variant_external_id for c in claimed if c.sent_at is None},
    )
    to_send: list[_Claimed] = []
    already_sent: list[int] = []
    for subscription in claimed:
        error = not_ensured.get(subscription.variant_external_id)
        if subscription.sent_at is not None:  # sent before a crash: only the marking is left
            already_sent.append(subscription.id)
        elif isinstance(error, KlaviyoRetryableError):
            to_send.append(replace(subscription, ensure_again=True))
        elif error is not None:
            outcomes[_push_failed(subscription, error)] += 1
        else:
            to_send.append(subscription)
    emails = {subscription.id: subscription.email for subscription in claimed}
    _accepted_record(already_sent, outcomes, emails)
    outcomes.update(_send_side_by_side(claimed=to_send, client=client, emails=emails))
    return outcomes


def _push_failed(subscription: _Claimed, error: Exception) -> str:
    with correlation_id_set(subscription.correlation_id):
        subscription_push_released(subscription_id=subscription.id, error=error)
        return subscription_push_error(subscription_id=subscription.id, error=error)


def _send_side_by_side(
    *, claimed: list[_Claimed], client: KlaviyoClient, emails: dict[int, str]
) -> Counter[str]:
    """Send the back-in-stock subscriptions of ``claimed`` (their variants exist) on
    ``SEND_CONCURRENCY`` threads, which make only the calls; this thread records the accepted
    ones a lot at a time. Returns how many ended how.

    A send that Klaviyo refuses because the variant does not exist after all goes through the
    one-at-a-time push, which creates the chain again; any other refusal is recorded as the
    push's error. Each thread opens at most one database connection (for those rare paths) and
    closes it when the batch is done.
    """
    waiting = deque(claimed)
    outcomes: Counter[str] = Counter()
    accepted: queue.SimpleQueue[int] = queue.SimpleQueue()
    lock = threading.Lock()

    def send() -> None:
        try:
            while True:
                with lock:
                    if not waiting:
                        return
                    subscription = waiting.popleft()
                outcome = _send_one(subscription, client)
                if outcome == "accepted":
                    accepted.put(subscription.id)
                else:
                    with lock:
                        outcomes[outcome] += 1
        finally:
            connection.close()

    threads = [
        threading.Thread(target=send, name=f"klaviyo-push-{number}")
        for number in range(min(SEND_CONCURRENCY, len(claimed)))
    ]
    for thread in threads:
        thread.start()
    lot: list[int] = []
    recorded_at = time.monotonic()
    while any(thread.is_alive() for thread in threads) or not accepted.empty():
        with contextlib.suppress(queue.Empty):
            lot.append(accepted.get(timeout=0.1))
        if len(lot) >= ACCEPTED_RECORD_LOT or (
            lot and time.monotonic() - recorded_at >= ACCEPTED_RECORD_SECONDS
        ):
            _accepted_record(lot, outcomes, emails)
            lot, recorded_at = [], time.monotonic()
    for thread in threads:
        thread.join()
    _accepted_record(lot, outcomes, emails)
    return outcomes


def _accepted_record(
    subscription_ids: list[int], outcomes: Counter[str], emails: dict[int, str]
) -> None:
    """Mark these accepted; an address erased while its push was on the wire has its Klaviyo
    profile deletion asked again (``erased_address_pushed``)."""
    if not subscription_ids:
        return
    erased = subscriptions_accepted(subscription_ids=subscription_ids)
    outcomes["subscribed"] += len(subscription_ids) - len(erased)
    for email in sorted({emails[i] for i in erased}):
        erased_address_pushed(email=email)


def _send_one(subscription: _Claimed, client: KlaviyoClient) -> str:
    """One back-in-stock subscription call; "accepted", or the outcome of the push's failure."""
    if subscription.ensure_again:
        return _push_claimed(subscription.id, client)
    with correlation_id_set(subscription.correlation_id):
        try:
            client.back_in_stock_subscription_create(
                body=back_in_stock_subscription_body(
                    email=subscription.email,
                    variant_external_id=subscription.variant_external_id,
                )
            )
        except KlaviyoError as exc:
            if not klaviyo_says_missing(exc):
                return _push_failed(subscription, exc)
            return _push_claimed(subscription.id, client)
        logger.info(
            "subscription %s accepted by Klaviyo for %s",
            subscription.id,
            subscription.variant_external_id,
        )
        return "accepted"


def _push_claimed(subscription_id: int, client: KlaviyoClient) -> str:
    try:
        subscription_claimed_push(subscription_id=subscription_id, client=client)
        return "subscribed"
    except (KlaviyoError, NotSoldThere) as exc:
        return subscription_push_error(subscription_id=subscription_id, error=exc)
