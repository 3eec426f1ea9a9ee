"""What the shop announces to the apps that build on it.

``shop`` knows neither ``backinstock`` nor ``klaviyo_sync``; they connect receivers to these
signals. Both are sent only after the transaction that made the change has committed, so a
receiver that queues a task never races the data it is told about.

- ``stock_changed(sender, size_ids: frozenset[int])``: the free-to-allocate figure of these
  sizes may have changed in at least one warehouse.
- ``allocation_changed(sender)``: which warehouses serve which ship-to country changed (an
  allocation rule's warehouses, a market's rule, or a country's market or ship-to flag).
- ``display_items_changed(sender, display_item_ids: frozenset[int])``: a display item, one of its
  prices or translations, or its product or variant changed.
"""

import logging
from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.dispatch import Signal

logger = logging.getLogger(__name__)

stock_changed = Signal()
display_items_changed = Signal()
allocation_changed = Signal()


def send_logging_failures(signal: Signal, **kwargs: Any) -> None:
    """Send to every receiver; one that fails is logged and does not stop the others.

    Announcements run after commit, often in a request: a listener's failure (a broker that is
    down, say) must not turn a stored change into an error answer. Listeners keep their own
    outbox for that case.
    """
    for receiver, result in signal.send_robust(sender=None, **kwargs):
        if isinstance(result, Exception):
            logger.error("receiver %r failed", receiver, exc_info=result)


def announce_stock_changed(*, size_ids: Iterable[int]) -> None:
    """Send ``stock_changed`` for these sizes once the current transaction commits."""
    ids = frozenset(size_ids)
    if ids:
        transaction.on_commit(lambda: send_logging_failures(stock_changed, size_ids=ids))


def announce_display_items_changed(*, display_item_ids: Iterable[int]) -> None:
    """Send ``display_items_changed`` for these display items once the transaction commits."""
    ids = frozenset(display_item_ids)
    if ids:
        transaction.on_commit(
            lambda: send_logging_failures(display_items_changed, display_item_ids=ids)
        )


def announce_allocation_changed() -> None:
    """Send ``allocation_changed`` once the current transaction commits."""
    transaction.on_commit(lambda: send_logging_failures(allocation_changed))
