"""What the Klaviyo integration does when the shop or back in stock announces something.

Each receiver queues work; if the broker is unreachable the failure is logged and the outbox
(pending subscriptions, pending catalog changes) still holds the work for the periodic tasks.
"""

from typing import Any

from django.conf import settings
from django.db import transaction
from django.dispatch import receiver

from backinstock.hooks import profile_deletion_requested, subscription_pending
from klaviyo_sync import tasks
from klaviyo_sync.selectors import integration_settings_get
from klaviyo_sync.services.catalog import catalog_changes_record
from klaviyo_sync.services.stock import stock_changes_record
from shop.hooks import allocation_changed, display_items_changed, stock_changed


@receiver(subscription_pending, dispatch_uid="klaviyo_sync.push_pending_subscription")
def push_pending_subscription(sender: Any, subscription_id: int, **kwargs: Any) -> None:
    tasks.push_subscription.delay(subscription_id)


@receiver(profile_deletion_requested, dispatch_uid="klaviyo_sync.send_profile_deletion")
def send_profile_deletion(sender: Any, request_id: int, **kwargs: Any) -> None:
    tasks.send_profile_deletion.delay(request_id)


@receiver(display_items_changed, dispatch_uid="klaviyo_sync.resend_changed_items")
def resend_changed_items(sender: Any, display_item_ids: frozenset[int], **kwargs: Any) -> None:
    with transaction.atomic():  # a failure here must not spoil a caller's transaction
        catalog_changes_record(display_item_ids=display_item_ids)
    if integration_settings_get().catalog_sync_enabled:
        tasks.sync_catalog_incremental_soon(
            coalesce_seconds=settings.KLAVIYO_CATALOG_COALESCE_SECONDS
        )


@receiver(stock_changed, dispatch_uid="klaviyo_sync.push_changed_stock")
def push_changed_stock(sender: Any, size_ids: frozenset[int], **kwargs: Any) -> None:
    with transaction.atomic():
        stock_changes_record(size_ids=size_ids)
    tasks.push_stock_changes_soon(coalesce_seconds=settings.KLAVIYO_STOCK_COALESCE_SECONDS)


@receiver(allocation_changed, dispatch_uid="klaviyo_sync.recompute_all_figures")
def recompute_all_figures(sender: Any, **kwargs: Any) -> None:
    """Which warehouses serve which country changed: every figure may have moved."""
    tasks.push_stock_changes.delay(reconcile=True)
