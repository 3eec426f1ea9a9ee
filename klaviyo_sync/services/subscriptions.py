"""Pushing back-in-stock subscriptions to Klaviyo (flow 2)."""

from __future__ import annotations

import logging
from datetime import timedelta
from enum import Enum

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from backinstock.models import BackInStockVariant, Subscription, SubscriptionStatus
from klaviyo_sync.client import KlaviyoClient, KlaviyoError
from klaviyo_sync.models import CatalogObjectKind, IntegrationSettings, SentCatalogObject
from klaviyo_sync.payloads import (
    back_in_stock_item_attributes,
    back_in_stock_subscription_body,
    back_in_stock_variant_attributes,
    catalog_item_create_resource,
    catalog_item_update_resource,
    catalog_variant_create_resource,
    catalog_variant_update_resource,
    payload_hash,
    profile_properties_body,
    single_body,
)
from klaviyo_sync.selectors import back_in_stock_payload_data, integration_settings_get
from klaviyo_sync.services.catalog import back_in_stock_category_ensure
from operations.metrics import metric_count

logger = logging.getLogger(__name__)

MAX_PUSH_ATTEMPTS = 8


class PushResult(Enum):
    SUBSCRIBED = "subscribed"
    NOT_CLAIMED = "not-claimed"  # done already, failed, or another worker holds it


def _sent_state(kind: str, external_id: str) -> SentCatalogObject | None:
    return SentCatalogObject.objects.filter(kind=kind, external_id=external_id).first()


def _remember(
    kind: str, external_id: str, value: str, *, inventory_quantity: int | None = None
) -> None:
    SentCatalogObject.objects.update_or_create(
        kind=kind,
        external_id=external_id,
        defaults={
            "payload_hash": value,
            "exists_in_klaviyo": True,
            "last_error": "",
            "sent_at": timezone.now(),
            **(
                {"inventory_quantity": inventory_quantity} if inventory_quantity is not None else {}
            ),
        },
    )


def back_in_stock_variant_ensure(
    *, client: KlaviyoClient, variant: BackInStockVariant, settings_record: IntegrationSettings
) -> None:
    """The ``backinstock`` category, the virtual item and the variant exist in Klaviyo.

    Each is created once (a 409 "already exists" means another worker or an earlier run was
    first, and the current attributes are sent as an update instead) and re-sent only when its
    attributes changed. A new variant carries its current stock figure (CONTRACT §8).
    """
    back_in_stock_category_ensure(client=client)
    [(item, variant_data)] = back_in_stock_payload_data(
        variants=[variant], settings_record=settings_record
    )

    item_attributes = back_in_stock_item_attributes(item)
    item_hash = payload_hash(item_attributes)
    sent_item = _sent_state(CatalogObjectKind.ITEM, item.external_id)
    if sent_item is None or not sent_item.exists_in_klaviyo or sent_item.payload_hash != item_hash:
        create = catalog_item_create_resource(
            external_id=item.external_id, attributes=item_attributes, category_ids=["backinstock"]
        )
        if not client.catalog_create(kind="item", body=single_body(create)):
            update = catalog_item_update_resource(
                external_id=item.external_id, attributes=item_attributes
            )
            client.catalog_update(
                kind="item", external_id=item.external_id, body=single_body(update)
            )
        _remember(CatalogObjectKind.ITEM, item.external_id, item_hash)

    variant_attributes = back_in_stock_variant_attributes(variant_data)
    variant_hash = payload_hash(variant_attributes)
    sent_variant = _sent_state(CatalogObjectKind.VARIANT, variant_data.external_id)
    if (
        sent_variant is None
        or not sent_variant.exists_in_klaviyo
        or sent_variant.payload_hash != variant_hash
    ):
        create = catalog_variant_create_resource(
            variant=variant_data, attributes=variant_attributes
        )
        if not client.catalog_create(kind="variant", body=single_body(create)):
            update = catalog_variant_update_resource(
                external_id=variant_data.external_id,
                attributes={
                    **variant_attributes,
                    "inventory_quantity": variant_data.inventory_quantity,
                },
            )
            client.catalog_update(
                kind="variant", external_id=variant_data.external_id, body=single_body(update)
            )
        _remember(
            CatalogObjectKind.VARIANT,
            variant_data.external_id,
            variant_hash,
            inventory_quantity=variant_data.inventory_quantity,
        )


def _claim(subscription_id: int) -> bool:
    """Take the push of a pending subscription for a while; False if it is not ours.

    The lease (``KLAVIYO_PUSH_LEASE_SECONDS``) outlives any push: a worker killed mid-push
    leaves it behind, and the sweep re-queues the subscription once it has run out.
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
    """Push one pending subscription to Klaviyo; safe to run twice, also concurrently.

    The subscription is claimed with a conditional update (a lease), so a second run finds it
    taken or done and returns ``NOT_CLAIMED``. Then: the category, virtual item and variant are
    made to exist, the back-in-stock subscription is created, and the profile's ``Language`` and
    ``Currency`` are set; each step's completion is stored, so a retry after a failure in a later
    step does not repeat an earlier one. Raises ``KlaviyoError`` (the claim released) for the
    caller to retry or give up (``subscription_push_failed``).
    """
    if not _claim(subscription_id):
        return PushResult.NOT_CLAIMED
    client = client or KlaviyoClient.from_settings()
    subscription = Subscription.objects.select_related(
        "language", "variant__product__country__pricelist"
    ).get(id=subscription_id)
    try:
        if subscription.subscription_sent_at is None:
            back_in_stock_variant_ensure(
                client=client,
                variant=subscription.variant,
                settings_record=integration_settings_get(),
            )
            client.back_in_stock_subscription_create(
                body=back_in_stock_subscription_body(
                    email=subscription.email, variant_external_id=subscription.variant.external_id
                )
            )
            Subscription.objects.filter(id=subscription_id).update(
                subscription_sent_at=timezone.now()
            )
        if subscription.profile_sent_at is None:
            country = subscription.variant.product.country
            client.profile_import(
                body=profile_properties_body(
                    email=subscription.email,
                    language=subscription.language.code,
                    currency=country.pricelist.currency if country.pricelist else None,
                    country_code=country.code,
                )
            )
            Subscription.objects.filter(id=subscription_id).update(profile_sent_at=timezone.now())
    except KlaviyoError as exc:
        Subscription.objects.filter(id=subscription_id).update(
            push_claimed_until=None, last_error=str(exc)[:2000]
        )
        raise
    Subscription.objects.filter(id=subscription_id).update(
        status=SubscriptionStatus.SUBSCRIBED,
        subscribed_at=timezone.now(),
        push_claimed_until=None,
        last_error="",
    )
    metric_count("subscription_pushes", outcome=PushResult.SUBSCRIBED.value)
    return PushResult.SUBSCRIBED


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
