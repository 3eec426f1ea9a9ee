"""Stock figures to Klaviyo (flow 4): what makes Klaviyo's back-in-stock flow send its emails."""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import Count, Exists, Max, Min, OuterRef, Q
from django.utils import timezone

from backinstock.models import BackInStockProduct, BackInStockVariant, SubscriptionStatus
from klaviyo_sync.client import KlaviyoClient
from klaviyo_sync.models import PendingStockChange, Restock
from klaviyo_sync.payloads import (
    back_in_stock_item_attributes,
    catalog_item_update_resource,
    inventory_quantity_for,
    job_batches,
    payload_hash,
    unpublished_item_attributes,
    variant_stock_update_resource,
)
from klaviyo_sync.selectors import back_in_stock_payload_data, integration_settings_get
from klaviyo_sync.services.jobs import BulkJobRunner, JobOutcome
from klaviyo_sync.services.leases import lease_acquire, lease_release
from klaviyo_sync.services.sent import (
    BACK_IN_STOCK,
    detail_says_missing,
    sent_figures_set,
    sent_forget,
    sent_objects,
    sent_remember,
)
from operations.metrics import metric_count
from shop.models import Price
from shop.selectors import availability_by_size_for_ship_to

logger = logging.getLogger(__name__)

STOCK_PUSH_LEASE = "klaviyo:stock-push"
STOCK_PUSH_LEASE_SECONDS = 15 * 60
# Accepted figures are recorded together, at most this often and once at the end: one
# transaction per job (about 35 ms for 100 variants) kept the caller's thread from taking in the
# next finished jobs, and added 0.7 s to a push of 20 jobs (bench/README.md, "Stock push"). A
# process that dies in between leaves the notes of those sizes, so the next push sends their
# figures again and records their restocks then.
ACCEPTED_RECORD_SECONDS = 0.5
WAITING = (SubscriptionStatus.PENDING, SubscriptionStatus.SUBSCRIBED)


class StockPushBusy(Exception):
    """Another stock push holds the lock."""


@dataclass
class StockPushResult:
    variants_considered: int = 0
    variants_changed: int = 0
    variants_failed: int = 0
    restocks: int = 0
    variants_recreated: int = 0
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
    """Note sizes whose figures must be recomputed (the stock push's outbox).

    A size noted again keeps its ``first_noted_at`` and moves its ``created_at`` to now: the
    first bounds its wait (``stock_changes_due``), the second keeps a note made again during a
    push for the next one (``stock_changes_done``).
    """
    now = timezone.now()
    PendingStockChange.objects.bulk_create(
        [
            PendingStockChange(size_id=size_id, created_at=now, first_noted_at=now)
            for size_id in set(size_ids)
        ],
        batch_size=1000,
        update_conflicts=True,
        unique_fields=["size_id"],
        update_fields=["created_at"],
    )


def _planned_changes(
    *, size_ids: list[int] | None, minimum_stock_level: int
) -> tuple[int, list[_Change], set[int]]:
    """The figures Klaviyo should have, compared with what it was last sent.

    Only variants that Klaviyo already has (in this account) and that someone is waiting on
    count: a variant is created, with its figure of that moment, when its first subscription is
    pushed. A variant whose display item is not sold to its ship-to location (unpublished, or no
    price in the country's pricelist) holds 0. Also returns the ids of the virtual products
    considered, whose items may need re-sending.
    """
    variants = BackInStockVariant.objects.filter(subscriptions__status__in=WAITING)
    if size_ids is not None:
        variants = variants.filter(size_id__in=size_ids)
    priced = Price.objects.filter(
        display_item_id=OuterRef("product__display_item_id"),
        pricelist_id=OuterRef("product__country__pricelist_id"),
    )
    rows = list(
        variants.annotate(
            subscribed=Count(
                "subscriptions", filter=Q(subscriptions__status=SubscriptionStatus.SUBSCRIBED)
            ),
            sold=Q(product__display_item__published=True) & Exists(priced),
        ).values_list(
            "id", "external_id", "size_id", "product__country__code", "subscribed", "sold",
            "product_id",
        )
    )  # fmt: skip
    sent = dict(
        sent_objects(owner=BACK_IN_STOCK, kind="variant", external_ids=[row[1] for row in rows])
        .filter(exists_in_klaviyo=True)
        .values_list("external_id", "inventory_quantity")
    )
    sizes_by_country: dict[str, set[int]] = defaultdict(set)
    for _, external_id, size_id, country_code, _, _, _ in rows:
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
    products: set[int] = set()
    for variant_id, external_id, size_id, country_code, subscribed, sold, product_id in rows:
        if external_id not in sent:
            continue
        products.add(product_id)
        quantity = inventory_quantity_for(
            availability=availability[(size_id, country_code)] if sold else 0,
            minimum_stock_level=minimum_stock_level,
        )
        previous = sent[external_id]
        if previous != quantity:
            changes.append(
                _Change(variant_id, external_id, size_id, previous or 0, quantity, subscribed)
            )
    return len({row[0] for row in rows if row[1] in sent}), changes, products


def stock_figures_push(
    *, size_ids: Iterable[int] | None = None, client: KlaviyoClient | None = None
) -> StockPushResult:
    """Send Klaviyo the back-in-stock figures that changed, in variant bulk update jobs.

    ``size_ids`` limits the work to the variants of these sizes; None means every variant with
    waiting subscribers (the reconciliation, and the answer to a changed minimum stock level or
    allocation rule). Each variant's figure is its ship-to location's availability under the
    minimum-stock rule (CONTRACT §8), and 0 while its display item is not sold there; only
    figures that differ from what Klaviyo accepted last are sent, up to 100 per job. The virtual
    items of the variants considered are re-sent when they changed (unpublished while their
    display item is not sold there, published again after). A rise from 0 is recorded as a
    ``Restock`` with the number of subscribers waiting. A variant Klaviyo answers does not exist
    is created again with its current figure; other failed elements are noted as pending changes
    for the next run. Only one push runs at a time, in any process (``StockPushBusy``).
    """
    holder = lease_acquire(name=STOCK_PUSH_LEASE, seconds=STOCK_PUSH_LEASE_SECONDS)
    if holder is None:
        raise StockPushBusy("another stock push is running")
    try:
        return _push(size_ids=None if size_ids is None else list(set(size_ids)), client=client)
    finally:
        lease_release(name=STOCK_PUSH_LEASE, holder=holder)


def _push(*, size_ids: list[int] | None, client: KlaviyoClient | None) -> StockPushResult:
    result = StockPushResult()
    considered, changes, product_ids = _planned_changes(
        size_ids=size_ids, minimum_stock_level=integration_settings_get().minimum_stock_level
    )
    result.variants_considered = considered
    result.variants_changed = len(changes)
    item_updates = _virtual_item_updates(product_ids=product_ids)
    if size_ids is None:
        item_updates.update(_withdrawn_item_updates())
    if not changes and not item_updates:
        return result
    client = client or KlaviyoClient.from_settings()
    by_external_id = {change.external_id: change for change in changes}
    lost: list[str] = []
    accepted: list[_Change] = []
    recorded_at = time.monotonic()

    def on_outcome(outcome: JobOutcome) -> None:
        if outcome.kind == "item":
            sent_remember(
                owner=BACK_IN_STOCK,
                kind="item",
                hashes={i: item_updates[i][1] for i in outcome.succeeded if i in item_updates},
            )
            lost_items = [i for i, d in outcome.failed.items() if detail_says_missing(d)]
            sent_forget(kind="item", external_ids=lost_items)
            return
        nonlocal recorded_at
        accepted.extend(by_external_id[i] for i in outcome.succeeded if i in by_external_id)
        if time.monotonic() - recorded_at >= ACCEPTED_RECORD_SECONDS:
            _record_accepted(accepted, result)
            accepted.clear()
            recorded_at = time.monotonic()
        missing = [i for i, detail in outcome.failed.items() if detail_says_missing(detail)]
        lost.extend(missing)
        refused = {i: d for i, d in outcome.failed.items() if i not in missing}
        if refused:
            result.variants_failed += len(refused)
            result.failures.update(refused)
            stock_changes_record(
                size_ids=[by_external_id[i].size_id for i in refused if i in by_external_id]
            )
            logger.warning("stock push: %d variants failed: %s", len(refused), refused)

    runner = BulkJobRunner(client, on_outcome=on_outcome)
    resources = [
        variant_stock_update_resource(external_id=c.external_id, inventory_quantity=c.quantity)
        for c in changes
    ]
    try:
        for batch in job_batches([resource for resource, _ in item_updates.values()]):
            runner.submit(kind="item", operation="update", resources=batch)
            result.jobs += 1
        for batch in job_batches(resources):
            runner.submit(kind="variant", operation="update", resources=batch)
            result.jobs += 1
        runner.drain()
    finally:
        runner.close()  # after a failure, let the runner's threads go
        _record_accepted(accepted, result)  # what Klaviyo took before a failure counts too
    result.calls = runner.calls
    if lost:
        result.variants_recreated = _lost_variants_recreate(external_ids=lost, client=client)
    metric_count("stock_figures_pushed", result.variants_changed - result.variants_failed)
    metric_count("restocks", result.restocks)
    return result


def _virtual_item_updates(*, product_ids: set[int]) -> dict[str, tuple[dict[str, Any], str]]:
    """Update resources (with their hashes) for the virtual items that changed since sent."""
    if not product_ids:
        return {}
    # An item's attributes are its virtual product's: one variant each is enough, and loading
    # all of them with their related rows cost a push of 2,000 variants a quarter of a second.
    one_variant_each = (
        BackInStockVariant.objects.filter(product_id__in=product_ids)
        .values("product_id")
        .annotate(last=Max("id"))
        .values("last")
    )
    variants = list(
        BackInStockVariant.objects.filter(id__in=one_variant_each)
        .select_related(
            "size", "product__display_item__variant__product", "product__country__pricelist"
        )
        .order_by("product_id")
    )
    data = back_in_stock_payload_data(variants=variants, settings_record=integration_settings_get())
    sent = dict(
        sent_objects(
            owner=BACK_IN_STOCK, kind="item", external_ids=[item.external_id for item, _ in data]
        )
        .filter(exists_in_klaviyo=True)
        .values_list("external_id", "payload_hash")
    )
    updates: dict[str, tuple[dict[str, Any], str]] = {}
    for item, _ in data:
        attributes = back_in_stock_item_attributes(item)
        value = payload_hash(attributes)
        if item.external_id in sent and sent[item.external_id] != value:
            resource = catalog_item_update_resource(
                external_id=item.external_id, attributes=attributes
            )
            updates[item.external_id] = (resource, value)
    return updates


def _withdrawn_item_updates() -> dict[str, tuple[dict[str, Any], str]]:
    """Virtual items Klaviyo has whose virtual product is gone (its display item was deleted):
    unpublished, so that no email offers what cannot be bought."""
    existing = set(BackInStockProduct.objects.values_list("external_id", flat=True))
    attributes = unpublished_item_attributes()
    value = payload_hash(attributes)
    return {
        external_id: (
            catalog_item_update_resource(external_id=external_id, attributes=attributes),
            value,
        )
        for external_id, sent_hash in sent_objects(owner=BACK_IN_STOCK, kind="item")
        .filter(exists_in_klaviyo=True)
        .values_list("external_id", "payload_hash")
        if external_id not in existing and sent_hash != value
    }


def _lost_variants_recreate(*, external_ids: list[str], client: KlaviyoClient) -> int:
    """Klaviyo answered that these variants do not exist: forget them and create them again
    (``back_in_stock_variants_recreate``); a variant that cannot be created now stays noted for
    the next push. Returns how many were created."""
    from klaviyo_sync.services.back_in_stock_catalog import back_in_stock_variants_recreate

    sent_forget(kind="variant", external_ids=external_ids)
    variants = list(
        BackInStockVariant.objects.filter(external_id__in=external_ids).select_related("product")
    )
    not_created = back_in_stock_variants_recreate(variants=variants, client=client)
    stock_changes_record(size_ids=[variant.size_id for variant in not_created])
    return len(variants) - len(not_created)


def _record_accepted(accepted: list[_Change], result: StockPushResult) -> None:
    if not accepted:
        return
    now = timezone.now()
    with transaction.atomic():
        sent_figures_set(figures={c.external_id: c.quantity for c in accepted}, at=now)
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
        Restock.objects.bulk_create(restocks, batch_size=1000)
    result.restocks += len(restocks)


def stock_changes_take(*, started_before: object) -> list[int]:
    """The sizes noted as changed up to a moment (their notes are removed after a push)."""
    return list(
        PendingStockChange.objects.filter(created_at__lte=started_before).values_list(
            "size_id", flat=True
        )
    )


def stock_changes_due(*, quiet: timedelta, window: timedelta) -> bool:
    """Whether the noted stock changes are to be pushed now, in one aggregate query.

    A debounce with a maximum wait: due once the newest note is ``quiet`` old (the changes have
    stopped coming; one Integration API call commits all its notes at once) or the oldest is
    ``window`` old (a steady stream still goes out at least that often). Both come from
    settings (``KLAVIYO_STOCK_QUIET_SECONDS``, ``KLAVIYO_STOCK_COALESCE_SECONDS``). False while
    nothing is noted. The quiet time counts from a size's latest note, the window from its
    first since the last push, so a size changing again and again without pause (orders on a
    hot size) still goes out once the window has passed.
    """
    now = timezone.now()
    notes = PendingStockChange.objects.aggregate(
        oldest=Min("first_noted_at"), newest=Max("created_at")
    )
    if notes["oldest"] is None:
        return False
    return bool(notes["newest"] <= now - quiet or notes["oldest"] <= now - window)


def stock_changes_done(*, size_ids: list[int], started_before: object) -> None:
    """Forget notes handled by a push; a note made again since is kept for the next one."""
    PendingStockChange.objects.filter(size_id__in=size_ids, created_at__lte=started_before).delete()
