"""What the Klaviyo integration does when the shop announces something.

Each receiver only writes to an outbox in the database (pending catalog changes, pending stock
changes); the scheduler's ticks (``klaviyo_sync.tasks``) send the work once its coalescing window
is over. Nothing here talks to the broker, so a request that changes stock or the catalog never
waits on it. Pending subscriptions and profile deletion requests need no receiver: they are
their own outbox, which the dispatcher reads every second.
"""

from typing import Any

from django.db import transaction
from django.dispatch import receiver

from klaviyo_sync import tasks
from klaviyo_sync.services.catalog import catalog_changes_record
from klaviyo_sync.services.stock import stock_changes_record
from shop.hooks import allocation_changed, display_items_changed, stock_changed
from shop.models import Size


@receiver(display_items_changed, dispatch_uid="klaviyo_sync.resend_changed_items")
def resend_changed_items(sender: Any, display_item_ids: frozenset[int], **kwargs: Any) -> None:
    """The catalog item is re-sent; so are the virtual items and figures of its sizes, which
    follow whether the display item is sold (published, priced) for each ship-to location."""
    with transaction.atomic():  # a failure here must not spoil a caller's transaction
        catalog_changes_record(display_item_ids=display_item_ids)
        stock_changes_record(
            size_ids=Size.objects.filter(
                variant__display_item__id__in=display_item_ids
            ).values_list("id", flat=True)
        )


@receiver(stock_changed, dispatch_uid="klaviyo_sync.push_changed_stock")
def push_changed_stock(sender: Any, size_ids: frozenset[int], **kwargs: Any) -> None:
    with transaction.atomic():
        stock_changes_record(size_ids=size_ids)


@receiver(allocation_changed, dispatch_uid="klaviyo_sync.recompute_all_figures")
def recompute_all_figures(sender: Any, **kwargs: Any) -> None:
    """Which warehouses serve which country changed: every figure may have moved."""
    tasks.push_stock_changes.delay(reconcile=True)
