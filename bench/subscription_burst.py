"""Time a burst of new subscriptions reaching the Klaviyo sandbox with Klaviyo's real limits.

    .venv/bin/python bench/subscription_burst.py [--subscriptions 10000] [--workers 2]

Generates a catalog, 1,000 back-in-stock variants already in Klaviyo (a sale day's hot sizes),
and N pending subscriptions spread over them, as N subscribe requests would leave them. Then
``--workers`` dispatcher loops (threads standing for worker processes, each running
``subscriptions_dispatch`` as the scheduler's tick would, back to back) push them against
``python -m klaviyo_sandbox --rate-limits real``. Reports the seconds until every subscription
is ``subscribed`` and until every profile is set, against the quota floor (N / 3,500 back-in-stock
subscriptions a minute: 171 s for 10,000), the calls made and the 429s. Exits 1 when a target is
missed: everything subscribed and every profile set within 1.25 x the floor, no 429.

The database and Redis are as in ``bench/catalog_sync.py`` (here the database
``backinstock_bench_subscription_burst``).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import threading
import time

from catalog_sync import (
    Check,
    bench_environment,
    machine_line,
    sandbox_summary,
    shop_catalog_rows_create,
    shop_reference_rows_create,
    table_print,
)
from stock_push import (
    LOCATIONS,
    SIZES_PER_ITEM,
    STOCK_BEFORE,
    back_in_stock_catalog_send,
    back_in_stock_rows_create,
)

BENCH_DATABASE = "backinstock_bench_subscription_burst"
BACK_IN_STOCK_PER_MINUTE = 3500
WALL_TARGET_RATIO = 1.25
VARIANTS = 1000


def pending_subscriptions_create(*, count: int) -> None:
    """Replace the generated subscriptions with ``count`` pending ones, as the requests left."""
    from backinstock.models import BackInStockVariant, Subscription, SubscriptionStatus
    from shop.models import Language

    variants = list(BackInStockVariant.objects.select_related("product__country"))
    default_language = Language.objects.get(is_default=True).pk
    Subscription.objects.all().delete()
    Subscription.objects.bulk_create(
        (
            Subscription(
                variant=variants[number % len(variants)],
                email=f"burst{number}@example.com",
                language_id=variants[number % len(variants)].product.country.language_id
                or default_language,
                status=SubscriptionStatus.PENDING,
            )
            for number in range(count)
        ),
        batch_size=2000,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscriptions", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args(argv)

    with bench_environment(database=BENCH_DATABASE, keep_db=args.keep_db) as sandbox:
        from django.db import connection

        from backinstock.models import Subscription
        from klaviyo_sync.selectors import integration_settings_get
        from klaviyo_sync.services.dispatch import subscriptions_dispatch

        sizes = math.ceil(VARIANTS / len(LOCATIONS))
        shop_reference_rows_create()
        shop_catalog_rows_create(
            items=math.ceil(sizes / SIZES_PER_ITEM),
            sizes_per_item=SIZES_PER_ITEM,
            physical_by_warehouse=STOCK_BEFORE,
            priced_everywhere=True,
        )
        integration_settings_get()
        back_in_stock_catalog_send(external_ids=back_in_stock_rows_create(variants=VARIANTS))
        pending_subscriptions_create(count=args.subscriptions)
        before = sandbox_summary(sandbox.url)
        time.sleep(61)  # the preparation's calls leave the sandbox's minute windows
        load_before = os.getloadavg()[0]

        done = threading.Event()
        moments: dict[str, float] = {}
        failures: list[BaseException] = []

        def worker() -> None:
            try:
                while not done.is_set():
                    result = subscriptions_dispatch()
                    if not result.claimed and not result.profiles_sent:
                        time.sleep(0.2)  # nothing to claim: wait for profile jobs or retries
            except BaseException as exc:  # reported below
                failures.append(exc)
                done.set()
            finally:
                connection.close()

        started = time.perf_counter()
        threads = [threading.Thread(target=worker) for _ in range(args.workers)]
        for thread in threads:
            thread.start()
        while not done.is_set():
            time.sleep(0.5)
            subscriptions = Subscription.objects.all()
            if (
                "subscribed" not in moments
                and not subscriptions.exclude(status="subscribed").exists()
            ):
                moments["subscribed"] = time.perf_counter() - started
            if (
                "profiles" not in moments
                and not subscriptions.filter(profile_sent_at=None).exists()
            ):
                moments["profiles"] = time.perf_counter() - started
                done.set()
            if time.perf_counter() - started > 900:
                done.set()
        for thread in threads:
            thread.join()
        failed = Subscription.objects.filter(status="failed").count()
        after = sandbox_summary(sandbox.url)

    if failures:
        raise failures[0]
    floor = args.subscriptions / BACK_IN_STOCK_PER_MINUTE * 60
    subscribed = moments.get("subscribed", math.inf)
    profiles = moments.get("profiles", math.inf)
    calls = {
        route: count - before.calls.get(route, 0)
        for route, count in after.calls.items()
        if count != before.calls.get(route, 0)
    }
    throttled = after.throttled - before.throttled
    print(f"{args.subscriptions:,} pending subscriptions over {VARIANTS:,} variants in Klaviyo")
    print(machine_line(load_before_first=load_before))
    print()
    rows = [
        ("dispatcher loops", str(args.workers)),
        ("quota floor (s)", f"{floor:.0f}"),
        ("all subscribed (s)", f"{subscribed:.1f}"),
        ("all profiles set (s)", f"{profiles:.1f}"),
        ("failed", str(failed)),
        *((f"calls: {route}", f"{count:,}") for route, count in sorted(calls.items())),
        ("429s received", str(throttled)),
    ]
    target = WALL_TARGET_RATIO * floor
    checks = [
        Check("all subscribed", f"{subscribed:.1f} s", f"<= {target:.0f} s", subscribed <= target),
        Check("all profiles set", f"{profiles:.1f} s", f"<= {target:.0f} s", profiles <= target),
        Check("429s received", str(throttled), "0", throttled == 0),
    ]
    return 0 if table_print(rows, checks) else 1


if __name__ == "__main__":
    sys.exit(main())
