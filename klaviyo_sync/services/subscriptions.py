"""Pushing back-in-stock subscriptions to Klaviyo (flow 2).

A push claims a pending subscription for a short, renewed lease, makes its variant exist in
Klaviyo (``klaviyo_sync.services.back_in_stock_catalog``), and creates the back-in-stock
subscription; the subscription is ``subscribed`` from then on, and its profile follows in a
profile bulk import job (``klaviyo_sync.services.profiles``). The dispatcher
(``klaviyo_sync.services.dispatch``) does the same for a batch at a time.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from datetime import timedelta
from enum import Enum

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from backinstock.models import Subscription, SubscriptionStatus
from backinstock.services import erased_address_pushed
from config.correlation import correlation_id_set
from klaviyo_sync.client import (
    KEY_REFUSED_STATUSES,
    KlaviyoClient,
    KlaviyoError,
    KlaviyoNotConfigured,
    KlaviyoPermanentError,
    KlaviyoRetryableError,
)
from klaviyo_sync.models import PushAttempt, PushOutcome, PushStep
from klaviyo_sync.payloads import back_in_stock_subscription_body
from klaviyo_sync.retry import backoff_seconds
from klaviyo_sync.selectors import integration_settings_get
from klaviyo_sync.services.back_in_stock_catalog import (
    MAX_RECREATE_ROUNDS,
    NotSoldThere,
    back_in_stock_variant_ensure,
    variant_chain_forget,
)
from klaviyo_sync.services.profiles import profile_jobs_follow, profiles_send
from klaviyo_sync.services.sent import klaviyo_says_missing
from operations.metrics import metric_count

logger = logging.getLogger(__name__)

MAX_PUSH_ATTEMPTS = 8
# While Klaviyo refuses the key (``KEY_REFUSED_STATUSES``) a subscription waits this long and
# tries again, without using up its attempts.
KEY_REFUSED_RETRY_SECONDS = 60.0
# How long a push done on its own waits for its profile's bulk import job.
PROFILE_WAIT_SECONDS = 10.0


class PushResult(Enum):
    SUBSCRIBED = "subscribed"
    NOT_CLAIMED = "not-claimed"  # done already, failed, or another worker holds it


class PushLeaseKeeper:
    """Renews the push leases of claimed subscriptions while their push is alive.

    The lease is short (``KLAVIYO_PUSH_LEASE_SECONDS``, 30 s by default) so that the
    subscriptions of a worker that died mid-push are free again within that time; a live push
    (which may wait on the shared rate limiter or on a slow Klaviyo) renews it every third of it,
    in one statement for all of them. Use as a context manager around the push.
    """

    def __init__(self, subscription_ids: Iterable[int]) -> None:
        self.subscription_ids = list(subscription_ids)
        self.seconds = float(settings.KLAVIYO_PUSH_LEASE_SECONDS)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="push-lease", daemon=True)

    def __enter__(self) -> PushLeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.seconds / 3):
                Subscription.objects.filter(
                    id__in=self.subscription_ids, status=SubscriptionStatus.PENDING
                ).update(push_claimed_until=timezone.now() + timedelta(seconds=self.seconds))
        except Exception:  # a renewal that fails only shortens the lease
            logger.warning("could not renew the push leases of %s", self.subscription_ids[:10])
        finally:
            connection.close()  # this thread's own connection


def _claim(subscription_id: int) -> bool:
    """Take the push of a pending subscription for a while; False if it is not ours.

    The lease is short and renewed while the push lives (``PushLeaseKeeper``): a worker killed
    mid-push leaves it to run out within ``KLAVIYO_PUSH_LEASE_SECONDS``, and the sweep re-queues
    the subscription then.
    """
    now = timezone.now()
    return bool(
        Subscription.objects.filter(id=subscription_id, status=SubscriptionStatus.PENDING)
        .filter(Q(push_claimed_until__isnull=True) | Q(push_claimed_until__lt=now))
        .update(
            push_claimed_until=now + timedelta(seconds=settings.KLAVIYO_PUSH_LEASE_SECONDS),
            attempts=F("attempts") + 1,
        )
    )


def subscription_push(*, subscription_id: int, client: KlaviyoClient | None = None) -> PushResult:
    """Push one pending subscription to Klaviyo now; safe to run twice, also concurrently.

    The subscription is claimed with a conditional update (a short lease, renewed while the
    push lives), so a second run finds it taken or done and returns ``NOT_CLAIMED``. Then the
    category, virtual item and variant are made to exist and the back-in-stock subscription is
    created (``subscription_claimed_push``); the subscription is ``subscribed`` from then on.
    Its profile's ``Language`` and ``Currency`` follow in a profile bulk import job, waited for
    here for a few seconds (the dispatcher finishes it otherwise). Raises ``KlaviyoError`` or
    ``NotSoldThere`` (the claim released) for the caller (``subscription_push_error``).
    """
    client = client or KlaviyoClient.from_settings()
    # Before the claim: a claim counts an attempt, and settings that allow no request must not
    # use up the subscription's retries.
    client.configuration_check()
    if not _claim(subscription_id):
        return PushResult.NOT_CLAIMED
    subscription_claimed_push(subscription_id=subscription_id, client=client)
    try:
        if profiles_send(client=client, subscription_ids=[subscription_id]) is not None:
            profile_jobs_follow(client=client, wait_seconds=PROFILE_WAIT_SECONDS)
    except KlaviyoError as exc:  # the profile is retried by the dispatcher
        logger.warning("profile of subscription %s not sent yet: %s", subscription_id, exc)
    return PushResult.SUBSCRIBED


def subscription_claimed_push(*, subscription_id: int, client: KlaviyoClient) -> None:
    """The back-in-stock part of the push of a subscription this process has claimed.

    Marks it ``subscribed`` once Klaviyo accepted its back-in-stock subscription (its profile
    follows, ``klaviyo_sync.services.profiles``). The variant is made to exist first, and
    "does not exist" from Klaviyo creates the chain again (the dispatcher's path for a send
    whose variant Klaviyo lost after the batch ensured it). Raises
    ``KlaviyoError`` or ``NotSoldThere`` with the claim released and the error recorded on the
    subscription.
    """
    subscription = Subscription.objects.select_related("variant").get(id=subscription_id)
    with correlation_id_set(subscription.correlation_id):
        try:
            with PushLeaseKeeper([subscription_id]):
                if subscription.subscription_sent_at is None:
                    _subscription_send(client=client, subscription=subscription)
        except (KlaviyoError, NotSoldThere) as exc:
            subscription_push_released(subscription_id=subscription_id, error=exc)
            raise
        logger.info(
            "subscription %s accepted by Klaviyo for %s", subscription_id, subscription.variant
        )
    if subscriptions_accepted(subscription_ids=[subscription_id]):
        erased_address_pushed(email=subscription.email)


def subscriptions_accepted(*, subscription_ids: list[int]) -> set[int]:
    """Klaviyo accepted the back-in-stock subscriptions of these claimed subscriptions: mark
    them ``subscribed`` and record the accepted attempt of those sent for the first time, in a
    few statements for the lot (the dispatcher calls it every half second or so of sends).

    Returns the ids of subscriptions erased meanwhile (the caller asks again for the deletion of
    their addresses' profiles, ``backinstock.services.erased_address_pushed``).
    """
    if not subscription_ids:
        return set()
    now = timezone.now()
    with transaction.atomic():
        found = dict(
            Subscription.objects.filter(id__in=subscription_ids)
            .select_for_update()
            .values_list("id", "subscription_sent_at")
        )
        first_sent = [i for i, sent_at in found.items() if sent_at is None]
        marked = Subscription.objects.filter(id__in=subscription_ids).update(
            status=SubscriptionStatus.SUBSCRIBED,
            subscription_sent_at=Coalesce(F("subscription_sent_at"), now),
            subscribed_at=now,
            push_claimed_until=None,
            last_error="",
        )
        PushAttempt.objects.bulk_create(
            PushAttempt(
                subscription_id=subscription_id,
                step=PushStep.BACK_IN_STOCK,
                outcome=PushOutcome.ACCEPTED,
            )
            for subscription_id in first_sent
        )
    metric_count("subscription_pushes", marked, outcome=PushResult.SUBSCRIBED.value)
    return set(subscription_ids) - set(found)


def subscription_push_released(*, subscription_id: int, error: Exception) -> None:
    """A push of a claimed subscription failed: release the claim and keep the error on it
    (``subscription_push_error`` decides what comes next)."""
    Subscription.objects.filter(id=subscription_id).update(
        push_claimed_until=None, last_error=str(error)[:2000]
    )
    logger.info("subscription %s not pushed: %s", subscription_id, error)


def subscription_push_error(*, subscription_id: int, error: Exception) -> str:
    """What a failed push leaves: ``failed`` with the reason when retrying cannot help (or after
    ``MAX_PUSH_ATTEMPTS``), else held for a retry with backoff; pending, untouched, while the
    settings allow no request (``KlaviyoNotConfigured``); pending, its attempt given back, while
    Klaviyo refuses the key (401, 403). Returns "failed", "retry", "not-configured" or
    "key-refused"."""
    if isinstance(error, KlaviyoNotConfigured):
        Subscription.objects.filter(id=subscription_id, status=SubscriptionStatus.PENDING).update(
            last_error=str(error)[:2000]
        )
        logger.warning("subscription %s stays pending: %s", subscription_id, error)
        return "not-configured"
    if isinstance(error, KlaviyoPermanentError) and error.status in KEY_REFUSED_STATUSES:
        # The key is wrong, revoked or lacks a scope: nothing about this subscription is. It
        # waits, its attempt given back, until an operator fixes the key.
        Subscription.objects.filter(id=subscription_id, attempts__gt=0).update(
            attempts=F("attempts") - 1
        )
        subscription_push_retry_later(
            subscription_id=subscription_id, delay_seconds=KEY_REFUSED_RETRY_SECONDS
        )
        _attempt_record(subscription_id, PushOutcome.RETRY, str(error))
        logger.warning(
            "Klaviyo refused the API key (%s): subscription %s waits", error.status, subscription_id
        )
        return "key-refused"
    if isinstance(error, KlaviyoRetryableError):
        attempts = (
            Subscription.objects.filter(id=subscription_id)
            .values_list("attempts", flat=True)
            .first()
            or 0
        )
        if attempts < MAX_PUSH_ATTEMPTS:
            delay = backoff_seconds(attempts, retry_after=error.retry_after)
            subscription_push_retry_later(subscription_id=subscription_id, delay_seconds=delay)
            _attempt_record(subscription_id, PushOutcome.RETRY, str(error))
            return "retry"
        reason = f"gave up after {attempts} attempts: {error}"
    elif isinstance(error, KlaviyoPermanentError):
        # Only an answer is a refusal; without one the request never reached Klaviyo.
        said = "Klaviyo refused" if error.status is not None else "not sent to Klaviyo"
        reason = f"{said}: {error}"
    else:
        reason = str(error)
    subscription_push_failed(subscription_id=subscription_id, reason=reason)
    _attempt_record(subscription_id, PushOutcome.FAILED, reason)
    return "failed"


def _attempt_record(subscription_id: int, outcome: str, error: str) -> None:
    PushAttempt.objects.create(
        subscription_id=subscription_id,
        step=PushStep.BACK_IN_STOCK,
        outcome=outcome,
        error=error[:2000],
    )


def _subscription_send(*, client: KlaviyoClient, subscription: Subscription) -> None:
    variant = subscription.variant
    body = back_in_stock_subscription_body(
        email=subscription.email, variant_external_id=variant.external_id
    )
    for round_number in range(1, MAX_RECREATE_ROUNDS + 1):
        back_in_stock_variant_ensure(
            client=client, variant=variant, settings_record=integration_settings_get()
        )
        try:
            client.back_in_stock_subscription_create(body=body)
            return
        except KlaviyoPermanentError as exc:
            if not klaviyo_says_missing(exc) or round_number == MAX_RECREATE_ROUNDS:
                raise
            logger.info("Klaviyo lost %s: creating it again", variant.external_id)
            variant_chain_forget(variant)


def subscription_push_retry_later(*, subscription_id: int, delay_seconds: float) -> None:
    """Hold a subscription for its retry: the sweep leaves it alone until the delay is over."""
    Subscription.objects.filter(id=subscription_id, status=SubscriptionStatus.PENDING).update(
        push_claimed_until=timezone.now() + timedelta(seconds=max(delay_seconds - 1, 0)),
        updated_at=timezone.now(),
    )
    metric_count("subscription_pushes", outcome="retry")


def subscription_push_failed(*, subscription_id: int, reason: str) -> None:
    """Give up on a push: ``failed`` with the reason, listed in the admin with a retry action."""
    with transaction.atomic():
        Subscription.objects.filter(id=subscription_id, status=SubscriptionStatus.PENDING).update(
            status=SubscriptionStatus.FAILED, last_error=reason[:2000], push_claimed_until=None
        )
    metric_count("subscription_pushes", outcome="failed")


def subscription_ids_to_sweep(*, older_than: timedelta, limit: int) -> list[int]:
    """Pending subscriptions nobody is pushing: the outbox the periodic sweep re-queues."""
    now = timezone.now()
    return list(
        Subscription.objects.filter(
            status=SubscriptionStatus.PENDING, updated_at__lt=now - older_than
        )
        .filter(Q(push_claimed_until__isnull=True) | Q(push_claimed_until__lt=now))
        .order_by("updated_at")
        .values_list("id", flat=True)[:limit]
    )
