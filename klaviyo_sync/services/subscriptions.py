"""Pushing back-in-stock subscriptions to Klaviyo (flow 2), and the objects they hang on.

The back-in-stock flow owns the ``backinstock`` category, the virtual items (``12366_SE_00``) and
their variants (``12366_SE_00_23400``): it creates them when a subscription needs them, and
creates them again whenever Klaviyo says they do not exist (deleted in Klaviyo, another account,
a sandbox that started empty).
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from enum import Enum

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from backinstock.models import BackInStockVariant, Subscription, SubscriptionStatus
from config.correlation import correlation_id_set
from klaviyo_sync.client import (
    KlaviyoClient,
    KlaviyoError,
    KlaviyoNotConfigured,
    KlaviyoPermanentError,
    KlaviyoRetryableError,
)
from klaviyo_sync.models import IntegrationSettings, PushAttempt, PushOutcome, PushStep
from klaviyo_sync.payloads import (
    BACK_IN_STOCK_CATEGORY_ID,
    back_in_stock_category_create_resource,
    back_in_stock_item_attributes,
    back_in_stock_subscription_body,
    back_in_stock_variant_attributes,
    catalog_item_create_resource,
    catalog_item_update_resource,
    catalog_variant_create_resource,
    catalog_variant_update_resource,
    payload_hash,
    single_body,
)
from klaviyo_sync.retry import backoff_seconds, call_with_retries
from klaviyo_sync.selectors import back_in_stock_payload_data, integration_settings_get
from klaviyo_sync.services.profiles import profile_jobs_follow, profiles_send
from klaviyo_sync.services.sent import (
    BACK_IN_STOCK,
    detail_says_missing,
    sent_forget,
    sent_objects,
    sent_remember,
)
from operations.metrics import metric_count

logger = logging.getLogger(__name__)

MAX_PUSH_ATTEMPTS = 8
# "Does not exist" anywhere in the chain (category, item, variant) forgets the chain and creates
# it again; a chain still missing after this many rounds is an error.
MAX_RECREATE_ROUNDS = 2
WAITING = (SubscriptionStatus.PENDING, SubscriptionStatus.SUBSCRIBED)
# How long a push done on its own waits for its profile's bulk import job.
PROFILE_WAIT_SECONDS = 10.0


class PushResult(Enum):
    SUBSCRIBED = "subscribed"
    NOT_CLAIMED = "not-claimed"  # done already, failed, or another worker holds it


class NotSoldThere(Exception):
    """The size cannot be bought for the subscription's ship-to location (no price in its
    pricelist): nothing with an invented price is sent to Klaviyo."""


def _missing(exc: KlaviyoError) -> bool:
    return isinstance(exc, KlaviyoPermanentError) and (
        exc.status == 404 or detail_says_missing(exc.detail)
    )


def _remembered(kind: str, external_id: str) -> tuple[bool, str]:
    """(whether Klaviyo has it, the hash it last accepted) for one back-in-stock object."""
    row = (
        sent_objects(owner=BACK_IN_STOCK, kind=kind, external_ids=[external_id])
        .values_list("exists_in_klaviyo", "payload_hash")
        .first()
    )
    return (bool(row[0]), row[1]) if row else (False, "")


def _create_or_update(
    client: KlaviyoClient,
    *,
    kind: str,
    external_id: str,
    exists: bool,
    create: dict[str, object],
    update: dict[str, object],
) -> None:
    """Send one object: an update if Klaviyo has it, else a create (409 → an update)."""
    if exists:
        try:
            client.catalog_update(kind=kind, external_id=external_id, body=single_body(update))  # type: ignore[arg-type]
            return
        except KlaviyoPermanentError as exc:
            if not _missing(exc):
                raise
            logger.info("Klaviyo lost %s %s: creating it again", kind, external_id)
    if not client.catalog_create(kind=kind, body=single_body(create)):  # type: ignore[arg-type]
        client.catalog_update(kind=kind, external_id=external_id, body=single_body(update))  # type: ignore[arg-type]


def back_in_stock_category_ensure(*, client: KlaviyoClient) -> None:
    """The ``backinstock`` category exists in Klaviyo (created once per account, remembered)."""
    exists, _ = _remembered("category", BACK_IN_STOCK_CATEGORY_ID)
    if exists:
        return
    resource = back_in_stock_category_create_resource()
    call_with_retries(lambda: client.catalog_create(kind="category", body=single_body(resource)))
    sent_remember(
        owner=BACK_IN_STOCK,
        kind="category",
        hashes={BACK_IN_STOCK_CATEGORY_ID: payload_hash(resource["attributes"])},
    )


def back_in_stock_variant_ensure(
    *, client: KlaviyoClient, variant: BackInStockVariant, settings_record: IntegrationSettings
) -> None:
    """The ``backinstock`` category, the virtual item and the variant exist in Klaviyo, as now.

    Each is created once per account (a 409 "already exists" means another worker or an earlier
    run was first: the current attributes are sent as an update) and re-sent only when its
    attributes changed. A new variant carries its current stock figure (CONTRACT §8). When
    Klaviyo answers that any of them does not exist, the memory of the whole chain is forgotten
    and the chain created again. Raises ``NotSoldThere`` for a variant without a price for its
    ship-to location that Klaviyo does not have yet, and ``KlaviyoError`` for the caller to retry.
    """
    for round_number in range(1, MAX_RECREATE_ROUNDS + 1):
        try:
            _variant_chain_send(client=client, variant=variant, settings_record=settings_record)
            return
        except KlaviyoPermanentError as exc:
            if not _missing(exc) or round_number == MAX_RECREATE_ROUNDS:
                raise
            logger.info("Klaviyo lost part of %s (%s): creating it again", variant, exc.detail)
            _variant_chain_forget(variant)


def _variant_chain_forget(variant: BackInStockVariant) -> None:
    sent_forget(kind="category", external_ids=[BACK_IN_STOCK_CATEGORY_ID])
    sent_forget(kind="item", external_ids=[variant.product.external_id])
    sent_forget(kind="variant", external_ids=[variant.external_id])


def _variant_chain_send(
    *, client: KlaviyoClient, variant: BackInStockVariant, settings_record: IntegrationSettings
) -> None:
    back_in_stock_category_ensure(client=client)
    [(item, variant_data)] = back_in_stock_payload_data(
        variants=[variant], settings_record=settings_record
    )
    item_exists, item_sent_hash = _remembered("item", item.external_id)
    variant_exists, variant_sent_hash = _remembered("variant", variant_data.external_id)
    if variant_data.price is None and not variant_exists:
        raise NotSoldThere(
            f"{variant_data.external_id}: the display item has no price in the pricelist of "
            "this ship-to country, so it is not sold there"
        )

    item_attributes = back_in_stock_item_attributes(item)
    item_hash = payload_hash(item_attributes)
    if not item_exists or item_sent_hash != item_hash:
        _create_or_update(
            client,
            kind="item",
            external_id=item.external_id,
            exists=item_exists,
            create=catalog_item_create_resource(
                external_id=item.external_id,
                attributes=item_attributes,
                category_ids=[BACK_IN_STOCK_CATEGORY_ID],
            ),
            update=catalog_item_update_resource(
                external_id=item.external_id, attributes=item_attributes
            ),
        )
        sent_remember(owner=BACK_IN_STOCK, kind="item", hashes={item.external_id: item_hash})

    variant_attributes = back_in_stock_variant_attributes(variant_data)
    variant_hash = payload_hash(variant_attributes)
    if not variant_exists or variant_sent_hash != variant_hash:
        figure = variant_data.inventory_quantity
        _create_or_update(
            client,
            kind="variant",
            external_id=variant_data.external_id,
            exists=variant_exists,
            create=catalog_variant_create_resource(
                variant=variant_data, attributes=variant_attributes
            ),
            update=catalog_variant_update_resource(
                external_id=variant_data.external_id,
                attributes={**variant_attributes, "inventory_quantity": figure},
            ),
        )
        sent_remember(
            owner=BACK_IN_STOCK,
            kind="variant",
            hashes={variant_data.external_id: variant_hash},
            inventory={variant_data.external_id: figure},
        )


def back_in_stock_objects_repair(*, client: KlaviyoClient | None = None) -> int:
    """Create again the virtual items and variants that someone is waiting on and that Klaviyo
    no longer has (after the reconciliation's read-back forgot them, or in another account);
    see ``back_in_stock_variants_recreate``. Variants nothing was pushed to yet are left to their
    pushes. Returns how many variants were created again.
    """
    remembered = set(
        sent_objects(owner=BACK_IN_STOCK, kind="variant")
        .filter(exists_in_klaviyo=True)
        .values_list("external_id", flat=True)
    )
    pushed = set(
        Subscription.objects.filter(status__in=WAITING, subscription_sent_at__isnull=False)
        .values_list("variant_id", flat=True)
        .distinct()
    )
    lost = [
        variant
        for variant in BackInStockVariant.objects.filter(id__in=pushed)
        .select_related("product")
        .order_by("id")
        if variant.external_id not in remembered
    ]
    not_created = back_in_stock_variants_recreate(
        variants=lost, client=client or KlaviyoClient.from_settings()
    )
    return len(lost) - len(not_created)


def back_in_stock_variants_recreate(
    *, variants: list[BackInStockVariant], client: KlaviyoClient
) -> list[BackInStockVariant]:
    """Klaviyo does not have these variants (it lost them, or this account never had them):
    create each again with its current figure, and put its subscribed subscriptions back to
    ``pending``, since their back-in-stock subscriptions and profiles went with the variant; the
    dispatcher sends them again. Returns the variants that could not be created now (Klaviyo
    refused, or not sold there), logged for the caller to retry later.
    """
    settings_record = integration_settings_get()
    not_created = []
    for variant in variants:
        try:
            back_in_stock_variant_ensure(
                client=client, variant=variant, settings_record=settings_record
            )
        except (KlaviyoError, NotSoldThere) as exc:
            logger.warning("could not create %s again: %s", variant.external_id, exc)
            not_created.append(variant)
            continue
        Subscription.objects.filter(variant=variant, status=SubscriptionStatus.SUBSCRIBED).update(
            status=SubscriptionStatus.PENDING,
            subscription_sent_at=None,
            profile_sent_at=None,
            push_claimed_until=None,
            updated_at=timezone.now(),
        )
    return not_created


class _LeaseKeeper:
    """Renews a subscription's push lease while its push is alive.

    The lease is short (``KLAVIYO_PUSH_LEASE_SECONDS``, 30 s by default) so that the
    subscriptions of a worker that died mid-push are free again within that time; a live push
    (which may wait on the shared rate limiter or on a slow Klaviyo) renews it every third of it.
    """

    def __init__(self, subscription_id: int) -> None:
        self.subscription_id = subscription_id
        self.seconds = float(settings.KLAVIYO_PUSH_LEASE_SECONDS)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="push-lease", daemon=True)

    def __enter__(self) -> _LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.seconds / 3):
                Subscription.objects.filter(
                    id=self.subscription_id, status=SubscriptionStatus.PENDING
                ).update(push_claimed_until=timezone.now() + timedelta(seconds=self.seconds))
        except Exception:  # a renewal that fails only shortens the lease
            logger.warning("could not renew the push lease of %s", self.subscription_id)
        finally:
            connection.close()  # this thread's own connection


def _claim(subscription_id: int) -> bool:
    """Take the push of a pending subscription for a while; False if it is not ours.

    The lease is short and renewed while the push lives (``_LeaseKeeper``): a worker killed
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
    if not _claim(subscription_id):
        return PushResult.NOT_CLAIMED
    client = client or KlaviyoClient.from_settings()
    subscription_claimed_push(subscription_id=subscription_id, client=client)
    try:
        if profiles_send(client=client, subscription_ids=[subscription_id]) is not None:
            profile_jobs_follow(client=client, wait_seconds=PROFILE_WAIT_SECONDS)
    except KlaviyoError as exc:  # the profile is retried by the dispatcher
        logger.warning("profile of subscription %s not sent yet: %s", subscription_id, exc)
    return PushResult.SUBSCRIBED


def subscription_claimed_push(
    *, subscription_id: int, client: KlaviyoClient, variant_ensured: bool = False
) -> None:
    """The back-in-stock part of the push of a subscription this process has claimed.

    Marks it ``subscribed`` once Klaviyo accepted its back-in-stock subscription (its profile
    follows, ``klaviyo_sync.services.profiles``). ``variant_ensured``: the caller has just made
    the variant exist (the dispatcher does it once per variant of a batch), so the first send
    goes straight to Klaviyo; "does not exist" still creates the chain again. Raises
    ``KlaviyoError`` or ``NotSoldThere`` with the claim released and the error recorded on the
    subscription.
    """
    subscription = Subscription.objects.select_related(
        "language", "variant__product__country__pricelist"
    ).get(id=subscription_id)
    with correlation_id_set(subscription.correlation_id):
        try:
            with _LeaseKeeper(subscription_id):
                if subscription.subscription_sent_at is None:
                    _subscription_send(
                        client=client, subscription=subscription, variant_ensured=variant_ensured
                    )
        except (KlaviyoError, NotSoldThere) as exc:
            Subscription.objects.filter(id=subscription_id).update(
                push_claimed_until=None, last_error=str(exc)[:2000]
            )
            logger.info("subscription %s not pushed: %s", subscription_id, exc)
            raise
        now = timezone.now()
        Subscription.objects.filter(id=subscription_id).update(
            status=SubscriptionStatus.SUBSCRIBED,
            subscription_sent_at=subscription.subscription_sent_at or now,
            subscribed_at=now,
            push_claimed_until=None,
            last_error="",
        )
        logger.info(
            "subscription %s accepted by Klaviyo for %s", subscription_id, subscription.variant
        )
        metric_count("subscription_pushes", outcome=PushResult.SUBSCRIBED.value)
        if subscription.subscription_sent_at is None:
            PushAttempt.objects.create(
                subscription_id=subscription_id,
                step=PushStep.BACK_IN_STOCK,
                outcome=PushOutcome.ACCEPTED,
            )


def subscription_push_error(*, subscription_id: int, error: Exception) -> str:
    """What a failed push leaves: ``failed`` with the reason when retrying cannot help (or after
    ``MAX_PUSH_ATTEMPTS``), else held for a retry with backoff; pending, untouched, while the
    settings allow no request (``KlaviyoNotConfigured``). Returns "failed", "retry" or
    "not-configured"."""
    if isinstance(error, KlaviyoNotConfigured):
        logger.warning("subscription %s stays pending: %s", subscription_id, error)
        return "not-configured"
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


def _subscription_send(
    *, client: KlaviyoClient, subscription: Subscription, variant_ensured: bool
) -> None:
    variant = subscription.variant
    body = back_in_stock_subscription_body(
        email=subscription.email, variant_external_id=variant.external_id
    )
    for round_number in range(1, MAX_RECREATE_ROUNDS + 1):
        if round_number > 1 or not variant_ensured:
            back_in_stock_variant_ensure(
                client=client, variant=variant, settings_record=integration_settings_get()
            )
        try:
            client.back_in_stock_subscription_create(body=body)
            return
        except KlaviyoPermanentError as exc:
            if not _missing(exc) or round_number == MAX_RECREATE_ROUNDS:
                raise
            logger.info("Klaviyo lost %s: creating it again", variant.external_id)
            _variant_chain_forget(variant)


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
