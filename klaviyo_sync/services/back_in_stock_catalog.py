"""The objects back in stock keeps in Klaviyo's catalog, and keeps true there.

The back-in-stock flow owns the ``backinstock`` category, the virtual items (``12366_SE_00``) and
their variants (``12366_SE_00_23400``): it creates them when a subscription needs them (one at a
time, or in bulk create jobs when a batch of subscriptions brings many new ones), and creates
them again whenever Klaviyo says they do not exist (deleted in Klaviyo, another account, a
sandbox that started empty). The subscriptions that hang on them are pushed by
``klaviyo_sync.services.subscriptions`` and ``klaviyo_sync.services.dispatch``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from django.utils import timezone

from backinstock.models import BackInStockVariant, Subscription, SubscriptionStatus
from klaviyo_sync.client import (
    KlaviyoClient,
    KlaviyoError,
    KlaviyoPermanentError,
)
from klaviyo_sync.models import IntegrationSettings
from klaviyo_sync.payloads import (
    BACK_IN_STOCK_CATEGORY_ID,
    BackInStockVariantData,
    back_in_stock_category_create_resource,
    back_in_stock_item_attributes,
    back_in_stock_variant_attributes,
    catalog_item_create_resource,
    catalog_item_update_resource,
    catalog_variant_create_resource,
    catalog_variant_update_resource,
    job_batches,
    payload_hash,
    single_body,
)
from klaviyo_sync.retry import call_with_retries
from klaviyo_sync.selectors import (
    back_in_stock_payload_data,
    back_in_stock_variants_get,
    integration_settings_get,
)
from klaviyo_sync.services.jobs import BulkJobRunner, JobOutcome
from klaviyo_sync.services.sent import (
    BACK_IN_STOCK,
    klaviyo_says_missing,
    sent_forget,
    sent_objects,
    sent_remember,
)

logger = logging.getLogger(__name__)

# "Does not exist" anywhere in the chain (category, item, variant) forgets the chain and creates
# it again; a chain still missing after this many rounds is an error.
MAX_RECREATE_ROUNDS = 2
WAITING = (SubscriptionStatus.PENDING, SubscriptionStatus.SUBSCRIBED)
# From this many objects of a kind that Klaviyo does not have yet, a batch creates them in bulk
# create jobs (at most 100 a job, KLAVIYO.md) instead of one call each: a job costs one call to
# create and at least one to read, and answers later.
BULK_CREATE_FROM = 10


class NotSoldThere(Exception):
    """The size cannot be bought for the subscription's ship-to location (no price in its
    pricelist): nothing with an invented price is sent to Klaviyo."""


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
            if not klaviyo_says_missing(exc):
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
            if not klaviyo_says_missing(exc) or round_number == MAX_RECREATE_ROUNDS:
                raise
            logger.info("Klaviyo lost part of %s (%s): creating it again", variant, exc.detail)
            variant_chain_forget(variant)


def variant_chain_forget(variant: BackInStockVariant) -> None:
    """Klaviyo lost part of the variant's chain: forget the category, item and variant, so the
    next ensure creates them all again."""
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
        raise _not_sold_there(variant_data.external_id)

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


@dataclass
class _Planned:
    """One variant of a batch: its payload data and what Klaviyo is remembered to have."""

    variant: BackInStockVariant
    item_attributes: dict[str, object]
    item_hash: str
    item_exists: bool
    item_current: bool  # Klaviyo has the item with these attributes
    variant_attributes: dict[str, object]
    variant_hash: str
    variant_exists: bool
    variant_current: bool
    variant_data: BackInStockVariantData


def back_in_stock_variants_ensure(
    *, client: KlaviyoClient, external_ids: Iterable[str]
) -> dict[str, Exception]:
    """Make these back-in-stock variants, their virtual items and the category exist in Klaviyo
    as they are now; the dispatcher's step before it sends a batch of subscriptions.

    ``external_ids``: variant external ids (``12366_SE_00_23400``). Returns the variants that
    could not be made to exist now, each with its error (``KlaviyoError``, or ``NotSoldThere``
    for a variant without a price for its ship-to location that Klaviyo does not have yet); the
    others exist now. The catalog data and the memory of what was sent are read once for the
    whole lot, so variants Klaviyo already has, as they are, cost a few queries and no call.
    When at least ``BULK_CREATE_FROM`` items or variants are new, they are created in bulk
    create jobs; what a job fails (an object that exists after all, say) and smaller lots go
    one at a time through ``back_in_stock_variant_ensure``, which also re-creates a chain
    Klaviyo lost.
    """
    variants = back_in_stock_variants_get(external_ids=external_ids)
    if not variants:
        return {}
    try:
        back_in_stock_category_ensure(client=client)
    except KlaviyoError as exc:
        return {variant.external_id: exc for variant in variants}
    settings_record = integration_settings_get()
    plans = _plans(variants=variants, settings_record=settings_record)
    errors: dict[str, Exception] = {}
    one_at_a_time: list[_Planned] = []
    for plan in plans:
        if plan.variant_data.price is None and not plan.variant_exists:
            errors[plan.variant.external_id] = _not_sold_there(plan.variant.external_id)
        elif not (plan.item_current and plan.variant_current):
            one_at_a_time.append(plan)
    one_at_a_time = _bulk_create_new(client=client, plans=one_at_a_time)
    for plan in one_at_a_time:
        try:
            back_in_stock_variant_ensure(
                client=client, variant=plan.variant, settings_record=settings_record
            )
        except (KlaviyoError, NotSoldThere) as exc:
            logger.info("%s not made to exist yet: %s", plan.variant.external_id, exc)
            errors[plan.variant.external_id] = exc
    return errors


def _not_sold_there(external_id: str) -> NotSoldThere:
    return NotSoldThere(
        f"{external_id}: the display item has no price in the pricelist of this ship-to "
        "country, so it is not sold there"
    )


def _plans(
    *, variants: list[BackInStockVariant], settings_record: IntegrationSettings
) -> list[_Planned]:
    data = back_in_stock_payload_data(variants=variants, settings_record=settings_record)
    remembered = {
        (kind, external_id): (bool(exists), sent_hash)
        for kind, external_ids in (
            ("item", {item.external_id for item, _ in data}),
            ("variant", {variant_data.external_id for _, variant_data in data}),
        )
        for external_id, exists, sent_hash in sent_objects(
            owner=BACK_IN_STOCK, kind=kind, external_ids=external_ids
        ).values_list("external_id", "exists_in_klaviyo", "payload_hash")
    }
    plans = []
    for variant, (item, variant_data) in zip(variants, data, strict=True):
        item_exists, item_sent_hash = remembered.get(("item", item.external_id), (False, ""))
        variant_exists, variant_sent_hash = remembered.get(
            ("variant", variant_data.external_id), (False, "")
        )
        item_attributes = back_in_stock_item_attributes(item)
        variant_attributes = back_in_stock_variant_attributes(variant_data)
        item_hash, variant_hash = payload_hash(item_attributes), payload_hash(variant_attributes)
        plans.append(
            _Planned(
                variant=variant,
                item_attributes=item_attributes,
                item_hash=item_hash,
                item_exists=item_exists,
                item_current=item_exists and item_sent_hash == item_hash,
                variant_attributes=variant_attributes,
                variant_hash=variant_hash,
                variant_exists=variant_exists,
                variant_current=variant_exists and variant_sent_hash == variant_hash,
                variant_data=variant_data,
            )
        )
    return plans


def _bulk_create_new(*, client: KlaviyoClient, plans: list[_Planned]) -> list[_Planned]:
    """Create in bulk jobs the items and variants of ``plans`` that Klaviyo has never had, when
    there are enough of them; returns the plans still to be sent one at a time."""
    new_items = {
        plan.variant.product.external_id: plan
        for plan in plans
        if not plan.item_exists and not plan.variant_exists
    }
    if len(new_items) >= BULK_CREATE_FROM:
        created_items = _bulk_create(
            client=client,
            kind="item",
            resources={
                external_id: catalog_item_create_resource(
                    external_id=external_id,
                    attributes=plan.item_attributes,
                    category_ids=[BACK_IN_STOCK_CATEGORY_ID],
                )
                for external_id, plan in new_items.items()
            },
        )
        sent_remember(
            owner=BACK_IN_STOCK,
            kind="item",
            hashes={i: new_items[i].item_hash for i in created_items},
        )
        for plan in plans:
            if plan.variant.product.external_id in created_items:
                plan.item_exists = plan.item_current = True
    new_variants = {
        plan.variant.external_id: plan
        for plan in plans
        if plan.item_current and not plan.variant_exists
    }
    if len(new_variants) < BULK_CREATE_FROM:
        return plans
    created_variants = _bulk_create(
        client=client,
        kind="variant",
        resources={
            i: catalog_variant_create_resource(
                variant=plan.variant_data, attributes=plan.variant_attributes
            )
            for i, plan in new_variants.items()
        },
    )
    sent_remember(
        owner=BACK_IN_STOCK,
        kind="variant",
        hashes={i: new_variants[i].variant_hash for i in created_variants},
        inventory={i: new_variants[i].variant_data.inventory_quantity for i in created_variants},
    )
    return [plan for plan in plans if plan.variant.external_id not in created_variants]


def _bulk_create(
    *, client: KlaviyoClient, kind: str, resources: dict[str, dict[str, object]]
) -> set[str]:
    """Run bulk create jobs for ``resources`` (external id → resource); returns the external ids
    Klaviyo created. A failed element, or a job that could not be run, is left out: the caller
    sends it one at a time, with its own error if it fails again."""
    created: set[str] = set()

    def outcome_take(outcome: JobOutcome) -> None:
        created.update(outcome.succeeded)
        for external_id, detail in outcome.failed.items():
            logger.info("bulk create of %s %s failed: %s", kind, external_id, detail)

    runner = BulkJobRunner(client, on_outcome=outcome_take)
    try:
        for batch in job_batches(list(resources.values())):
            runner.submit(kind=kind, operation="create", resources=batch)  # type: ignore[arg-type]
        runner.drain()
    except KlaviyoError as exc:
        logger.warning("bulk create of %d new %ss not finished: %s", len(resources), kind, exc)
    finally:
        runner.close()
    return created & set(resources)
