"""Stock figures to Klaviyo (flow 4): what makes Klaviyo's back-in-stock flow send its emails."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.core.cache import cache
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from backinstock.models import BackInStockVariant, SubscriptionStatus
from klaviyo_sync.client import KlaviyoClient
from klaviyo_sync.models import CatalogObjectKind, PendingStockChange, Restock, SentCatalogObject
from klaviyo_sync.payloads import inventory_quantity_for, job_batches, variant_stock_update_resource
from klaviyo_sync.selectors import integration_settings_get
from klaviyo_sync.services.jobs import BulkJobRunner, JobOutcome
from operations.metrics import metric_count
from shop.selectors import availability_by_size_for_ship_to

logger = logging.getLogger(__name__)

STOCK_PUSH_LOCK_KEY = "klaviyo:stock-push-lock"
STOCK_PUSH_LOCK_SECONDS = 15 * 60
WAITING = (SubscriptionStatus.PENDING, SubscriptionStatus.SUBSCRIBED)


class StockPushBusy(Exception):
    """Another stock push holds the lock."""


@dataclass
class StockPushResult:
    variants_considered: int = 0
    variants_changed: int = 0
    variants_failed: int = 0
    restocks: int = 0
    jobs: int = 0
    calls: int = 0
    failures: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Change:
    variant_id: int
    external_id: str
    size_id: int
    previous: int
    quantity: int
    subscribed: int


def stock_changes_record(*, size_ids: Iterable[int]) -> None:
    """Note sizes whose figures must be recomputed (the stock push's outbox)."""
    now = timezone.now()
    PendingStockChange.objects.bulk_create(
        [PendingStockChange(size_id=size_id, created_at=now) for size_id in set(size_ids)],
        batch_size=1000,
        update_conflicts=True,
        unique_fields=["size_id"],
        update_fields=["created_at"],
    )


def _planned_changes(
    *, size_ids: list[int] | None, minimum_stock_level: int
) -> tuple[int, list[_Change]]:
    """The figures Klaviyo should have, compared with what it was last sent.

    Only variants that Klaviyo already has and that someone is waiting on count: a variant is
    created, with its figure of that moment, when its first subscription is pushed.
    """
    variants = BackInStockVariant.objects.filter(subscriptions__status__in=WAITING)
    if size_ids is not None:
        variants = variants.filter(size_id__in=size_ids)
    rows = list(
        variants.annotate(
            subscribed=Count(
                "subscriptions", filter=Q(subscriptions__status=SubscriptionStatus.SUBSCRIBED)
            )
        ).values_list("id", "external_id", "size_id", "product__country__code", "subscribed")
    )
    sent = dict(
        SentCatalogObject.objects.filter(
            kind=CatalogObjectKind.VARIANT,
            exists_in_klaviyo=True,
            external_id__in=[row[1] for row in rows],
        ).values_list("external_id", "inventory_quantity")
    )
    sizes_by_country: dict[str, set[int]] = defaultdict(set)
    for _, external_id, size_id, country_code, _ in rows:
        if external_id in sent:
            sizes_by_country[country_code].add(size_id)
    availability = {
        (size_id, country_code): figure
        for country_code, country_sizes in sizes_by_country.items()
        for size_id, figure in availability_by_size_for_ship_to(
            size_ids=country_sizes, country_code=country_code
        ).items()
    }
    changes = []
    for variant_id, external_id, size_id, country_code, subscribed in rows:
        if external_id not in sent:
            continue
        quantity = inventory_quantity_for(
            availability=availability[(size_id, country_code)],
            minimum_stock_level=minimum_stock_level,
        )
        previous = sent[external_id]
        if previous != quantity:
            changes.append(
                _Change(variant_id, external_id, size_id, previous or 0, quantity, subscribed)
            )
    considered = sum(1 for row in rows if row[1] in sent)
    return considered, changes


def stock_figures_push(
    *, size_ids: Iterable[int] | None = None, client: KlaviyoClient | None = None
) -> StockPushResult:
    """Send Klaviyo the back-in-stock figures that changed, in variant bulk update jobs.

    ``size_ids`` limits the work to the variants of these sizes; None means every variant with
    waiting subscribers (the reconciliation, and the answer to a changed minimum stock level or
    allocation rule). Each variant's figure is its ship-to location's availability under the
    minimum-stock rule (CONTRACT §8); only figures that differ from what Klaviyo accepted last
    are sent, up to 100 per job. A rise from 0 is recorded as a ``Restock`` with the number of
    subscribers waiting. Failed elements are noted as pending changes for the next run.
    """
    if not cache.add(STOCK_PUSH_LOCK_KEY, "1", timeout=STOCK_PUSH_LOCK_SECONDS):
        raise StockPushBusy("another stock push is running")
    try:
        return _push(size_ids=None if size_ids is None else list(set(size_ids)), client=client)
    finally:
        cache.delete(STOCK_PUSH_LOCK_KEY)


def _push(*, size_ids: list[int] | None, client: KlaviyoClient | None) -> StockPushResult:
    result = StockPushResult()
    considered, changes = _planned_changes(
        size_ids=size_ids, minimum_stock_level=integration_settings_get().minimum_stock_level
    )
    result.variants_considered = considered
    result.variants_changed = len(changes)
    if not changes:
        return result
    client = client or KlaviyoClient.from_settings()
    by_external_id = {change.external_id: change for change in changes}

    def on_outcome(outcome: JobOutcome) -> None:
        accepted = [by_external_id[i] for i in outcome.succeeded if i in by_external_id]
        _record_accepted(accepted, result)
        if outcome.failed:
            result.variants_failed += len(outcome.failed)
            result.failures.update(outcome.failed)
            stock_changes_record(
                size_ids=[by_external_id[i].size_id for i in outcome.failed if i in by_external_id]
            )
            logger.warning(
                "stock push: %d variants failed: %s", len(outcome.failed), outcome.failed
            )

    runner = BulkJobRunner(client, on_outcome=on_outcome)
    resources = [
        variant_stock_update_resource(external_id=c.external_id, inventory_quantity=c.quantity)
        for c in changes
    ]
    try:
        for batch in job_batches(resources):
            runner.submit(kind="variant", operation="update", resources=batch)
            result.jobs += 1
        runner.drain()
    finally:
        runner.close()  # after a failure, let the runner's threads go
    result.calls = runner.calls
    metric_count("stock_figures_pushed", result.variants_changed - result.variants_failed)
    metric_count("restocks", result.restocks)
    return result


def _record_accepted(accepted: list[_Change], result: StockPushResult) -> None:
    if not accepted:
        return
    now = timezone.now()
    with transaction.atomic():
        rows = {
            row.external_id: row
            for row in SentCatalogObject.objects.select_for_update().filter(
                kind=CatalogObjectKind.VARIANT, external_id__in=[c.external_id for c in accepted]
            )
        }
        for change in accepted:
            rows[change.external_id].inventory_quantity = change.quantity
            rows[change.external_id].sent_at = now
        SentCatalogObject.objects.bulk_update(rows.values(), ["inventory_quantity", "sent_at"])
        restocks = [
            Restock(
                variant_id=c.variant_id,
                previous_quantity=c.previous,
                quantity=c.quantity,
                waiting_subscribers=c.subscribed,
                sent_at=now,
            )
            for c in accepted
            if c.previous <= 0 < c.quantity
        ]
        Restock.objects.bulk_create(restocks)
    result.restocks += len(restocks)


def stock_changes_take(*, started_before: object) -> list[int]:
    """The sizes noted as changed up to a moment (their notes are removed after a push)."""
    return list(
        PendingStockChange.objects.filter(created_at__lte=started_before).values_list(
            "size_id", flat=True
        )
    )


def stock_changes_done(*, size_ids: list[int], started_before: object) -> None:
    """Forget notes handled by a push; a note made again since is kept for the next one."""
    PendingStockChange.objects.filter(size_id__in=size_ids, created_at__lte=started_before).delete()
