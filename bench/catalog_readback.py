"""Time the reconciliation's read-back of Klaviyo's catalog against the sandbox, real limits.

    .venv/bin/python bench/catalog_readback.py [--items 100000]

Fills a sandbox (in this process, Klaviyo's rate limits on) with N catalog items, 4 back-in-stock
variants per 100 items and the ``backinstock`` category, then runs the full sync's read-back,
``klaviyo_catalog_read``: ``GET /api/catalog-items`` (``-variants``, ``-categories``) 100 a page,
following ``links.next``, through the project's rate-limited client. Reports the reads made and
the seconds against the quota floor as KLAVIYO.md counts it, at the steady 3,500 catalog reads a
minute (1,000 pages about 17 s), and against the burst bound (350 a second) that a read-back
shorter than a minute can reach. Exits 1 when the read-back misses an object, meets a 429, or
takes longer than 1.25 x the floor.

The pages follow each other (each ``links.next`` is in the page before), so against Klaviyo
itself the time is the reads times Klaviyo's answer time whenever that exceeds 1/350 s.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
API_KEY = "pk_bench_readback"
READS_PER_SECOND, READS_PER_MINUTE = 350, 3500
PAGE = 100


def quota_floor_seconds(reads: int) -> float:
    """``reads`` at the steady catalog-read rate, 3,500 a minute (KLAVIYO.md's floor)."""
    return reads / READS_PER_MINUTE * 60


def burst_bound_seconds(reads: int) -> float:
    """The least time the limits allow: 350 a second within each minute's 3,500."""
    if reads <= READS_PER_MINUTE:
        return reads / READS_PER_SECOND
    return (reads // READS_PER_MINUTE) * 60 + (reads % READS_PER_MINUTE) / READS_PER_SECOND


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    import django

    django.setup()
    from klaviyo_sandbox import Sandbox
    from klaviyo_sandbox.catalog import Record
    from klaviyo_sync.client import KlaviyoClient
    from klaviyo_sync.ratelimit import KLAVIYO_RATE_LIMITS, RateLimiter
    from klaviyo_sync.services.catalog import klaviyo_catalog_read

    variants = args.items // PAGE * 4
    with Sandbox(rate_limits=True, api_key=API_KEY) as sandbox:
        objects = sandbox.store.catalog.objects
        with sandbox.store.lock:
            for number in range(args.items):
                objects["item"][str(10_000 + number)] = Record(
                    attributes={"external_id": str(10_000 + number), "title": "x", "url": "u"}
                )
            for number in range(variants):
                objects["variant"][f"{10_000 + number}_SE_00_1"] = Record(
                    attributes={"external_id": f"{10_000 + number}_SE_00_1"},
                    links=[str(10_000 + number)],
                )
            objects["category"]["backinstock"] = Record(attributes={"external_id": "backinstock"})
        client = KlaviyoClient(
            base_url=sandbox.url,
            api_key=API_KEY,
            revision="2026-07-15",
            rate_limiter=RateLimiter(limits=KLAVIYO_RATE_LIMITS),
            timeout=(3.05, 60.0),
        )
        load_before = os.getloadavg()[0]
        started = time.perf_counter()
        present = klaviyo_catalog_read(client=client)
        seconds = time.perf_counter() - started
        throttled = sandbox.snapshot()["throttled"]

    expected_reads = math.ceil(args.items / PAGE) + math.ceil(variants / PAGE) + 1
    floor = quota_floor_seconds(present.reads)
    complete = (len(present.items), len(present.variants), len(present.categories)) == (
        args.items,
        variants,
        1,
    )
    print(f"{args.items:,} items, {variants:,} variants, 1 category in the sandbox")
    print(
        f"machine: {os.cpu_count()} CPUs; load average (1 min) {load_before:.1f} before, "
        f"{os.getloadavg()[0]:.1f} after"
    )
    print(f"reads made: {present.reads:,} (expected {expected_reads:,})")
    print(
        f"read-back: {seconds:.1f} s; quota floor {floor:.1f} s ({seconds / floor:.2f} x); "
        f"burst bound {burst_bound_seconds(present.reads):.1f} s"
    )
    print(f"429s: {throttled}; every object seen: {complete}")
    within = seconds <= 1.25 * floor
    return 0 if complete and throttled == 0 and within else 1


if __name__ == "__main__":
    sys.exit(main())
