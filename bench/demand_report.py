"""Time the demand report with 100,000 waiting subscriptions over 10,000 sizes.

    .venv/bin/python bench/demand_report.py [--sizes 10000] [--subscriptions 100000] [--keep-db]

Generates ``--sizes / 5`` published display items of 5 sizes each, stocked in every warehouse,
and for every size a back-in-stock variant in each of the four ship-to locations SE, DE, US-NY
and US-CA, with the figure Klaviyo holds; ``--subscriptions`` waiting shoppers spread over those
variants and over the last 90 days, and a restock told to Klaviyo for one variant in ten. Then
loads the report as a logged-in operator would (Django's test client, the whole request: the
admin's middleware, the queries and the template) in each of its views, five times each, and
reports the median and the slowest time and the queries of each. Exits 1 when a page load's
median is one second or more. The CSV export of every row is timed too (not held to the target:
it streams).

Database, Redis and settings as in ``bench/catalog_sync.py`` (database
``backinstock_bench_demand``; the sandbox it starts is not used).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import timedelta
from itertools import cycle
from typing import Any

from catalog_sync import (
    Check,
    bench_environment,
    display_item_id,
    machine_line,
    shop_catalog_rows_create,
    shop_reference_rows_create,
    size_id,
    table_print,
)

BENCH_DATABASE = "backinstock_bench_demand"
SIZES_PER_ITEM = 5
LOCATIONS = (("SE", None), ("DE", None), ("US", "NY"), ("US", "CA"))
DAYS = 90
RUNS = 5
TARGET_SECONDS = 1.0
ROWS_PER_BATCH = 5000


def demand_rows_create(*, sizes: int, subscriptions: int) -> int:
    """Back-in-stock products, variants, what Klaviyo holds, subscriptions and restocks; answers
    the number of back-in-stock variants."""
    from django.utils import timezone

    from backinstock.models import (
        BackInStockProduct,
        BackInStockVariant,
        Subscription,
        SubscriptionStatus,
        product_external_id,
        variant_external_id,
    )
    from klaviyo_sync.accounts import current_account
    from klaviyo_sync.models import CatalogObjectKind, Restock, SentCatalogObject
    from shop.models import Country, Language, State

    countries = {c.code: c for c in Country.objects.all()}
    states = {(s.country.code, s.code): s for s in State.objects.select_related("country")}
    language = Language.objects.get(is_default=True).pk
    items = sizes // SIZES_PER_ITEM
    products = BackInStockProduct.objects.bulk_create(
        [
            BackInStockProduct(
                external_id=product_external_id(
                    display_item_id=display_item_id(index), country_code=country, state_code=state
                ),
                display_item_id=display_item_id(index),
                country=countries[country],
                state=states[(country, state)] if state else None,
            )
            for index in range(items)
            for country, state in LOCATIONS
        ],
        batch_size=ROWS_PER_BATCH,
    )
    variants = BackInStockVariant.objects.bulk_create(
        [
            BackInStockVariant(
                external_id=variant_external_id(
                    product_external_id=product.external_id,
                    size_id=size_id(number // len(LOCATIONS), size_index, sizes_per_item=5),
                ),
                product=product,
                size_id=size_id(number // len(LOCATIONS), size_index, sizes_per_item=5),
            )
            for number, product in enumerate(products)
            for size_index in range(SIZES_PER_ITEM)
        ],
        batch_size=ROWS_PER_BATCH,
    )
    SentCatalogObject.objects.bulk_create(
        [
            SentCatalogObject(
                account=current_account(),
                owner="back_in_stock",
                kind=CatalogObjectKind.VARIANT,
                external_id=variant.external_id,
                inventory_quantity=(number % 7) * 5,
                exists_in_klaviyo=True,
            )
            for number, variant in enumerate(variants)
        ],
        batch_size=ROWS_PER_BATCH,
    )
    now = timezone.now()
    Restock.objects.bulk_create(
        [
            Restock(
                variant=variant,
                previous_quantity=0,
                quantity=15,
                waiting_subscribers=3,
                sent_at=now - timedelta(days=number % DAYS),
            )
            for number, variant in enumerate(variants)
            if number % 10 == 0
        ],
        batch_size=ROWS_PER_BATCH,
    )
    targets = cycle(variants)
    for start in range(0, subscriptions, ROWS_PER_BATCH):
        rows = [
            Subscription(
                variant=next(targets),
                email=f"shopper{number}@example.com",
                language_id=language,
                status=SubscriptionStatus.SUBSCRIBED if number % 3 else SubscriptionStatus.PENDING,
            )
            for number in range(start, min(start + ROWS_PER_BATCH, subscriptions))
        ]
        Subscription.objects.bulk_create(rows)
        for row in rows:  # spread over the last DAYS days, as shoppers arrive
            row.created_at = now - timedelta(days=row.pk % DAYS, minutes=row.pk % 1440)
        Subscription.objects.bulk_update(rows, ["created_at"])
    return len(variants)


def _timed(client: Any, query: dict[str, str]) -> tuple[list[float], int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    url = reverse("backinstock-demand")
    seconds = []
    queries = 0
    for _ in range(RUNS):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.get(url, query)
            body = b"".join(response.streaming_content) if response.streaming else response.content
            seconds.append(time.perf_counter() - started)
        assert response.status_code == 200, (response.status_code, body[:500])
        queries = len(captured)
    return seconds, queries


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, default=10_000)
    parser.add_argument("--subscriptions", type=int, default=100_000)
    parser.add_argument(
        "--keep-db", action="store_true", help=f"keep the database {BENCH_DATABASE} afterwards"
    )
    args = parser.parse_args(argv)

    with bench_environment(database=BENCH_DATABASE, keep_db=args.keep_db):
        import os

        from django.conf import settings
        from django.contrib.auth.models import User
        from django.db import connection
        from django.test import Client

        started = time.perf_counter()
        shop_reference_rows_create()
        shop_catalog_rows_create(
            items=args.sizes // SIZES_PER_ITEM,
            sizes_per_item=SIZES_PER_ITEM,
            physical_by_warehouse={"Stockholm": 12, "Berlin": 3, "New Jersey": 20},
        )
        variants = demand_rows_create(sizes=args.sizes, subscriptions=args.subscriptions)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        print(
            f"generated {args.sizes} sizes, {variants} back-in-stock variants and "
            f"{args.subscriptions} waiting subscriptions in {time.perf_counter() - started:.0f} s"
        )
        User.objects.create_superuser("bench", password="bench")  # noqa: S106
        settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
        client = Client()
        client.login(username="bench", password="bench")  # noqa: S106
        client.get("/admin/")  # warm the templates and the connection
        load_before = os.getloadavg()[0]

        views = {
            "per size, most waiting first": {},
            "per size, by availability, page 50": {"o": "-availability", "p": "50"},
            "per size, one market, last 30 days": {
                "market": "1",
                "since": (time.strftime("%Y-%m-%d", time.gmtime(time.time() - 30 * 86400))),
            },
            "per product": {"by": "product"},
            "per market": {"by": "market"},
        }
        rows: list[tuple[str, str]] = []
        checks: list[Check] = []
        for name, query in views.items():
            seconds, queries = _timed(client, query)
            median = statistics.median(seconds)
            rows.append((f"{name}: slowest, queries", f"{max(seconds):.3f} s, {queries}"))
            checks.append(
                Check(
                    f"{name}: median page load",
                    f"{median:.3f} s",
                    f"< {TARGET_SECONDS:.0f} s",
                    median < TARGET_SECONDS,
                )
            )
        export, _ = _timed(client, {"format": "csv"})
        rows.append(
            (f"CSV export of all {variants} rows: median", f"{statistics.median(export):.3f} s")
        )
        print(machine_line(load_before_first=load_before))
        return 0 if table_print(rows, checks) else 1


if __name__ == "__main__":
    sys.exit(main())
