"""Time one large stock call through to Klaviyo: the Integration API call, then the stock push.

    .venv/bin/python bench/stock_push.py [--entries 10000] [--variants 2000] [--keep-db]

Generates display items with 5 sizes each, stocked below the minimum stock level everywhere, and
``--variants`` back-in-stock variants (a quarter of them per ship-to location SE, DE, US-NY,
US-CA) with 1-3 subscribed shoppers each, which Klaviyo (the sandbox, real rate limits, started
as a separate process) already has with the figure 0. Then sends one Integration API call of
``--entries`` entries (every size in Stockholm and New Jersey) that lifts every subscribed size
above the minimum, and runs what the worker would run once the call's notes are due (the
``push_stock_changes`` task, here synchronously and at once). One request with an empty list
(a 400) goes first, so that the measured call finds the view and URLconf loaded, as in a web
process that has served before.

Reports the request time, the variants whose figure changed, the variant bulk update jobs and
all calls, the time from the call's start until the last job was sent and until every job had
completed (the task returned). In production the push cannot start before the call's notes are
``KLAVIYO_STOCK_QUIET_SECONDS`` old (a call's notes land in one commit, so the quiet time decides,
not the coalescing window), and then waits for the next stock tick, up to
``KLAVIYO_STOCK_TICK_SECONDS``: both are added, in rows of their own. Exits 1 when a target is
missed: at most ceil(changed variants / 100) jobs, every changed figure in Klaviyo, no 429,
the last figure in Klaviyo at most 5 s after the call started even in the worst case.

Database, Redis and settings as in ``bench/catalog_sync.py`` (database
``backinstock_bench_stock_push``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from itertools import cycle
from typing import Any

from catalog_sync import (
    Check,
    bench_environment,
    bulk_jobs_logged,
    display_item_id,
    machine_line,
    sandbox_summary,
    shop_catalog_rows_create,
    shop_reference_rows_create,
    size_id,
    table_print,
)

BENCH_DATABASE = "backinstock_bench_stock_push"
INTEGRATION_API_TOKEN = "bench-integration-token"  # noqa: S105  (a throwaway bench secret)
SIZES_PER_ITEM = 5
# Below the minimum stock level of 10 everywhere: SE and DE 2 + 1, the US 3 + 2.
STOCK_BEFORE = {"Stockholm": 2, "Berlin": 1, "New Jersey": 3}
CALL_WAREHOUSES = ("Stockholm", "New Jersey")
LOCATIONS = (("SE", None), ("DE", None), ("US", "NY"), ("US", "CA"))
VARIANTS_PER_JOB = 100
VARIANT_UPDATE_JOBS = "POST /api/catalog-variant-bulk-update-jobs"
LAST_FIGURE_TARGET_SECONDS = 5.0  # README.md, "Performance and reliability"


def back_in_stock_rows_create(*, variants: int) -> list[str]:
    """Back-in-stock products and variants of the first sizes, with subscribed shoppers.

    A quarter of ``variants`` sizes, each for the four locations; 1-3 subscriptions a variant.
    Answers the variants' external ids.
    """
    from backinstock.models import (
        BackInStockProduct,
        BackInStockVariant,
        Subscription,
        SubscriptionStatus,
        product_external_id,
        variant_external_id,
    )
    from shop.models import Country, Language, State

    countries = {c.code: c for c in Country.objects.all()}
    default_language = Language.objects.get(is_default=True).pk
    states = {(s.country.code, s.code): s for s in State.objects.select_related("country")}
    sizes = math.ceil(variants / len(LOCATIONS))
    items = math.ceil(sizes / SIZES_PER_ITEM)
    products = [
        (
            index,
            BackInStockProduct(
                external_id=product_external_id(
                    display_item_id=display_item_id(index), country_code=country, state_code=state
                ),
                display_item_id=display_item_id(index),
                country=countries[country],
                state=states[(country, state)] if state else None,
            ),
        )
        for index in range(items)
        for country, state in LOCATIONS
    ]
    BackInStockProduct.objects.bulk_create([product for _, product in products])
    rows = [
        BackInStockVariant(
            external_id=variant_external_id(
                product_external_id=product.external_id,
                size_id=size_id(index, size_index, sizes_per_item=SIZES_PER_ITEM),
            ),
            product=product,
            size_id=size_id(index, size_index, sizes_per_item=SIZES_PER_ITEM),
        )
        for index, product in products
        for size_index in range(SIZES_PER_ITEM)
    ][:variants]
    BackInStockVariant.objects.bulk_create(rows)
    shoppers = cycle(range(10_000))
    Subscription.objects.bulk_create(
        Subscription(
            variant=variant,
            email=f"shopper{next(shoppers)}@example.com",
            language_id=variant.product.country.language_id or default_language,
            status=SubscriptionStatus.SUBSCRIBED,
        )
        for number, variant in enumerate(rows)
        for _ in range(1 + number % 3)
    )
    return [variant.external_id for variant in rows]


def back_in_stock_catalog_send(*, external_ids: list[str]) -> None:
    """Create the category, items and variants in Klaviyo with bulk jobs, and record them sent.

    What pushing the first subscription of each variant would have done, in 25 calls rather
    than 4,000.
    """
    from backinstock.models import BackInStockVariant
    from klaviyo_sync.client import CatalogKind, KlaviyoClient
    from klaviyo_sync.payloads import (
        back_in_stock_item_attributes,
        back_in_stock_variant_attributes,
        catalog_item_create_resource,
        catalog_variant_create_resource,
        job_batches,
        payload_hash,
    )
    from klaviyo_sync.selectors import (
        back_in_stock_payload_data,
        back_in_stock_variants_get,
        integration_settings_get,
    )
    from klaviyo_sync.services.back_in_stock_catalog import back_in_stock_category_ensure
    from klaviyo_sync.services.jobs import BulkJobRunner, JobOutcome
    from klaviyo_sync.services.sent import BACK_IN_STOCK, sent_remember

    variants: list[BackInStockVariant] = back_in_stock_variants_get(external_ids=external_ids)
    data = back_in_stock_payload_data(variants=variants, settings_record=integration_settings_get())
    failures: dict[str, str] = {}

    def on_outcome(outcome: JobOutcome) -> None:
        failures.update(outcome.failed)

    client = KlaviyoClient.from_settings()
    back_in_stock_category_ensure(client=client)
    items = {item.external_id: item for item, _ in data}
    item_resources = [
        catalog_item_create_resource(
            external_id=external_id,
            attributes=back_in_stock_item_attributes(item),
            category_ids=["backinstock"],
        )
        for external_id, item in items.items()
    ]
    variant_resources = [
        catalog_variant_create_resource(
            variant=variant, attributes=back_in_stock_variant_attributes(variant)
        )
        for _, variant in data
    ]
    kinds: tuple[tuple[CatalogKind, list[dict[str, Any]]], ...] = (
        ("item", item_resources),
        ("variant", variant_resources),
    )
    for kind, resources in kinds:
        runner = BulkJobRunner(client, on_outcome=on_outcome)
        for batch in job_batches(resources):
            runner.submit(kind=kind, operation="create", resources=batch)
        runner.drain()  # the variants need their items
    if failures:
        raise RuntimeError(f"the sandbox refused {len(failures)} objects: {failures}")
    sent_remember(
        owner=BACK_IN_STOCK,
        kind="item",
        hashes={
            external_id: payload_hash(back_in_stock_item_attributes(item))
            for external_id, item in items.items()
        },
    )
    sent_remember(
        owner=BACK_IN_STOCK,
        kind="variant",
        hashes={
            variant.external_id: payload_hash(back_in_stock_variant_attributes(variant))
            for _, variant in data
        },
        inventory={variant.external_id: variant.inventory_quantity for _, variant in data},
    )


def stock_call_body(*, entries: int) -> dict[str, list[dict[str, object]]]:
    """Every size in Stockholm and New Jersey, above the minimum stock level everywhere."""
    sizes = math.ceil(entries / len(CALL_WAREHOUSES))
    stock = [
        {
            "sku": f"SKU-{size_id(*divmod(number, SIZES_PER_ITEM), sizes_per_item=SIZES_PER_ITEM)}",
            "warehouse": warehouse,
            "physical": (12 + number % 5) if warehouse == "Stockholm" else (15 + number % 3),
            "allocated": number % 2,
        }
        for number in range(sizes)
        for warehouse in CALL_WAREHOUSES
    ]
    return {"stock": stock[:entries]}


def sent_figures() -> dict[str, int | None]:
    from klaviyo_sync.models import CatalogObjectKind, SentCatalogObject

    return dict(
        SentCatalogObject.objects.filter(kind=CatalogObjectKind.VARIANT).values_list(
            "external_id", "inventory_quantity"
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--variants", type=int, default=2_000)
    parser.add_argument(
        "--keep-db", action="store_true", help=f"keep the database {BENCH_DATABASE} afterwards"
    )
    args = parser.parse_args(argv)
    sizes = math.ceil(args.entries / len(CALL_WAREHOUSES))
    if args.variants > sizes * len(LOCATIONS):
        parser.error("--variants needs at least a quarter as many sizes as the call touches")

    os.environ["INTEGRATION_API_TOKEN"] = INTEGRATION_API_TOKEN
    with bench_environment(database=BENCH_DATABASE, keep_db=args.keep_db) as sandbox:
        from django.conf import settings
        from django.test import Client, override_settings

        from klaviyo_sync.models import PendingStockChange
        from klaviyo_sync.selectors import integration_settings_get
        from klaviyo_sync.tasks import push_stock_changes

        started = time.perf_counter()
        shop_reference_rows_create()
        shop_catalog_rows_create(
            items=math.ceil(sizes / SIZES_PER_ITEM),
            sizes_per_item=SIZES_PER_ITEM,
            physical_by_warehouse=STOCK_BEFORE,
            priced_everywhere=True,
        )
        integration_settings_get()
        external_ids = back_in_stock_rows_create(variants=args.variants)
        back_in_stock_catalog_send(external_ids=external_ids)
        prepared = time.perf_counter() - started
        before = sandbox_summary(sandbox.url)
        figures_before = sent_figures()
        body = json.dumps(stock_call_body(entries=args.entries))

        client = Client(HTTP_HOST="127.0.0.1")

        def stock_call(data: str) -> Any:
            return client.post(
                "/api/integration-api/stock",
                data=data,
                content_type="application/json",
                headers={"Authorization": f"Bearer {INTEGRATION_API_TOKEN}"},
            )

        warm_up = stock_call(json.dumps({"stock": []}))  # logged as a Bad Request
        load_before = os.getloadavg()[0]
        with bulk_jobs_logged() as log:
            started = time.perf_counter()
            answer = stock_call(body)
            request_seconds = time.perf_counter() - started
            noted_sizes = PendingStockChange.objects.count()
            # The quiet time is added to the figures below; the task runs as the tick would
            # once it has passed.
            with override_settings(KLAVIYO_STOCK_QUIET_SECONDS=0):
                pushed = push_stock_changes.apply(throw=True)
            completed_seconds = time.perf_counter() - started
        after = sandbox_summary(sandbox.url)
        figures_after = sent_figures()
        quiet = float(settings.KLAVIYO_STOCK_QUIET_SECONDS)
        tick = float(settings.KLAVIYO_STOCK_TICK_SECONDS)
        left_noted = PendingStockChange.objects.count()

    if warm_up.status_code != 400:
        print(f"the warm-up call answered {warm_up.status_code}, not 400")
        return 1
    if answer.status_code != 200:
        print(f"the Integration API answered {answer.status_code}: {answer.content[:500]!r}")
        return 1
    changed = sum(1 for key, value in figures_after.items() if figures_before.get(key) != value)
    jobs = after.count(VARIANT_UPDATE_JOBS) - before.count(VARIANT_UPDATE_JOBS)
    calls = sum(after.calls.values()) - sum(before.calls.values())
    most_jobs = math.ceil(changed / VARIANTS_PER_JOB)
    last_sent = (log.last() or started) - started
    throttled = after.throttled - before.throttled
    worst_case = completed_seconds + quiet + tick
    print(
        f"catalog: {sizes:,} sizes; {args.variants:,} back-in-stock variants with subscribers "
        f"in Klaviyo; prepared in {prepared:.1f} s"
    )
    print(machine_line(load_before_first=load_before))
    print(f"Integration API: {answer.status_code} {answer.json()}; task: {pushed.result!r}")
    print()
    rows = [
        ("entries in the call", f"{args.entries:,}"),
        ("sizes noted as changed", f"{noted_sizes:,}"),
        ("request time (s)", f"{request_seconds:.2f}"),
        ("variants whose figure changed", f"{changed:,}"),
        ("variant bulk update jobs", str(jobs)),
        ("all Klaviyo calls", str(calls)),
        ("call start -> last job sent (s)", f"{last_sent:.2f}"),
        ("call start -> all jobs complete (s)", f"{completed_seconds:.2f}"),
        (f"  + quiet time {quiet:g} s (s)", f"{completed_seconds + quiet:.2f}"),
        (f"  + quiet time + one tick {tick:g} s, worst case (s)", f"{worst_case:.2f}"),
        ("429s received", str(throttled)),
        ("sizes still noted afterwards", str(left_noted)),
    ]
    checks = [
        Check("jobs", str(jobs), f"<= {most_jobs}", jobs <= most_jobs),
        Check(
            "variants in stock in Klaviyo",
            f"{after.variants_in_stock:,}",
            f"{args.variants:,}",
            changed == args.variants == after.variants_in_stock,
        ),
        Check("429s received", str(throttled), "0", throttled == 0),
        Check(
            "last figure after the change, worst case (s)",
            f"{worst_case:.2f}",
            f"<= {LAST_FIGURE_TARGET_SECONDS:g}",
            worst_case <= LAST_FIGURE_TARGET_SECONDS,
        ),
    ]
    return 0 if table_print(rows, checks) else 1


if __name__ == "__main__":
    sys.exit(main())
