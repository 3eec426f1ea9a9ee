"""Time a full catalog sync of a generated catalog against the Klaviyo sandbox, real rate limits.

    .venv/bin/python bench/catalog_sync.py [--items 100000] [--keep-db]

Generates N published display items with ``bulk_create`` (a product per two display items, 1-2
images, prices in 2-3 pricelists, 1-2 translations), starts the Klaviyo sandbox as a separate
process (``python -m klaviyo_sandbox --rate-limits real --job-seconds 0.5``) and runs
``catalog_sync_run(full=True)`` in this process twice: the first run creates every item, the
second, with nothing changed, must send no writes. Reports the wall time against the quota floor
(N / 100 create jobs at 750 jobs a minute: 80 s for 100,000 items), the calls made, the 429s
received and this process's peak RSS. Exits 1 when a target is missed:

- first run within 1.25 x the floor, peak RSS under 300 MB, no 429;
- second run sends no write.

The database is ``DATABASE_URL`` when set, else, as in ``bench/import_catalog.py``, a throwaway
one on 127.0.0.1 (user postgres; ``BENCH_POSTGRES_URL`` names another server), here
``backinstock_bench_catalog_sync``, dropped afterwards unless ``--keep-db``. Redis is
``BENCH_REDIS_URL`` (default ``redis://127.0.0.1:6379/10``), flushed first: it holds the shared
rate limiter and the sync's lock. Settings are ``config.settings.test`` unless
``DJANGO_SETTINGS_MODULE`` says else. ``bench/stock_push.py`` builds on the helpers here.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import resource
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any
from unittest import mock

import psycopg
import redis

if TYPE_CHECKING:
    from klaviyo_sync.client import BulkOperation, CatalogKind, KlaviyoClient

ROOT = Path(__file__).resolve().parent.parent
# Tests use Redis dbs 14-15 and bench/load.py 12-13.
BENCH_REDIS_URL = "redis://127.0.0.1:6379/10"
BENCH_DATABASE = "backinstock_bench_catalog_sync"
BENCH_API_KEY = "pk_bench"
SANDBOX_JOB_SECONDS = 0.5
ROWS_PER_BATCH = 2000
# Klaviyo's quota for bulk job creation (KLAVIYO.md) and the targets of the issue.
JOBS_PER_MINUTE = 750
RESOURCES_PER_JOB = 100
WALL_TARGET_RATIO = 1.25
PEAK_RSS_TARGET_MB = 300
WAREHOUSES = ("Stockholm", "Berlin", "New Jersey")
PRICELISTS = {"SEK": "SEK", "EUR": "EUR", "USD": "USD"}
ALLOCATION_RULES = {"EU": ("Stockholm", "Berlin"), "US": ("New Jersey", "Stockholm")}
MARKETS = {"Sweden": "EU", "Germany": "EU", "USA": "US"}
# code: (name, market, pricelist, language, states)
COUNTRIES: dict[str, tuple[str, str, str, str, tuple[str, ...]]] = {
    "SE": ("Sweden", "Sweden", "SEK", "sv", ()),
    "DE": ("Germany", "Germany", "EUR", "de", ()),
    "US": ("United States", "USA", "USD", "en", ("NY", "CA")),
}


# --- the environment: database, Redis, sandbox, Django --------------------------------------------


@dataclass(frozen=True)
class SandboxProcess:
    """The sandbox the bench started: where it listens, and its process."""

    url: str
    pid: int

    def cpu_seconds(self) -> float:
        """User and system CPU time the sandbox has used so far (Linux)."""
        with Path(f"/proc/{self.pid}/stat").open() as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def bench_environment(*, database: str, keep_db: bool) -> Iterator[SandboxProcess]:
    """A migrated database, a flushed Redis db and a sandbox process, which it yields.

    Everything is set in the environment before Django is set up, so settings read it as they
    would in production. Celery's broker is in memory: a task queued by a receiver must not reach
    a worker of another database.
    """
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    created = not os.environ.get("DATABASE_URL")
    if created:
        os.environ["DATABASE_URL"] = database_recreate(database)
    redis_url = os.environ.get("BENCH_REDIS_URL", BENCH_REDIS_URL)
    redis.Redis.from_url(redis_url).flushdb()
    os.environ["REDIS_URL"] = redis_url
    os.environ["CELERY_BROKER_URL"] = "memory://localhost/"
    with sandbox_process() as sandbox:
        os.environ["KLAVIYO_API_URL"] = sandbox.url
        os.environ["KLAVIYO_API_KEY"] = BENCH_API_KEY

        import django
        from django.core.management import call_command

        django.setup()
        call_command("migrate", verbosity=0)
        try:
            yield sandbox
        finally:
            from django.db import connections

            connections.close_all()
            if created and not keep_db:
                database_drop(database)


def _postgres_server() -> str:
    return os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def database_recreate(name: str) -> str:
    """Drop and create a throwaway database; returns its URL.

    As ``bench/import_catalog.py`` does, but named per bench: ``bench/load.py`` recreates
    ``backinstock_bench`` too, and two benches running at once must not drop each other's.
    """
    server = _postgres_server()
    with psycopg.connect(server, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        connection.execute(f"CREATE DATABASE {name}")
    return server.rsplit("/", 1)[0] + f"/{name}"


def database_drop(name: str) -> None:
    with psycopg.connect(_postgres_server(), autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@contextmanager
def sandbox_process(*, job_seconds: float = SANDBOX_JOB_SECONDS) -> Iterator[SandboxProcess]:
    """``python -m klaviyo_sandbox`` with Klaviyo's rate limits, on a free port.

    A separate process, so that its CPU and memory are not counted as the sync's.
    """
    command = [
        sys.executable,
        "-m",
        "klaviyo_sandbox",
        "--port",
        "0",
        "--api-key",
        BENCH_API_KEY,
        "--rate-limits",
        "real",
        "--job-seconds",
        str(job_seconds),
    ]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()  # the sandbox prints its URL once it serves
        if not url.startswith("http"):
            raise RuntimeError(f"the sandbox did not start (exit code {process.poll()})")
        yield SandboxProcess(url=url, pid=process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass(frozen=True)
class SandboxSummary:
    """The parts of ``/_sandbox/state`` a bench reports."""

    calls: dict[str, int]
    throttled: int
    items: int
    variants: int
    variants_in_stock: int

    def count(self, prefix: str) -> int:
        """Calls whose route (``POST /api/catalog-item-bulk-create-jobs``) starts so."""
        return sum(n for route, n in self.calls.items() if route.startswith(prefix))

    @property
    def writes(self) -> int:
        return sum(n for route, n in self.calls.items() if not route.startswith("GET "))


def sandbox_summary(url: str) -> SandboxSummary:
    """Read the sandbox's state in a child process.

    The state holds the whole catalog (hundreds of MB of JSON at 100,000 items): parsed here it
    would become this process's peak RSS.
    """
    code = "import sys; from catalog_sync import _summary_print; _summary_print(sys.argv[1])"
    answer = subprocess.run(
        [sys.executable, "-c", code, url],
        cwd=Path(__file__).parent,
        capture_output=True,
        text=True,
        check=True,
    )
    return SandboxSummary(**json.loads(answer.stdout))


def _summary_print(url: str) -> None:
    with urllib.request.urlopen(f"{url}/_sandbox/state", timeout=600) as answer:  # noqa: S310
        state = json.load(answer)
    variants = state["variants"].values()
    summary = {
        "calls": state["calls"],
        "throttled": state["throttled"],
        "items": len(state["items"]),
        "variants": len(variants),
        "variants_in_stock": sum(1 for v in variants if (v["inventory_quantity"] or 0) > 0),
    }
    print(json.dumps(summary))


@dataclass
class JobLog:
    """When Klaviyo accepted each bulk job (``perf_counter`` seconds), in no particular order."""

    sent: list[tuple[str, float]] = field(default_factory=list)

    def last(self) -> float | None:
        return max((moment for _, moment in self.sent), default=None)


@contextmanager
def bulk_jobs_logged() -> Iterator[JobLog]:
    """Note the moment each ``bulk_job_create`` call returns (instrumentation only)."""
    from klaviyo_sync.client import KlaviyoClient

    log = JobLog()
    original: Callable[..., dict[str, Any]] = KlaviyoClient.bulk_job_create

    def logged(
        client: KlaviyoClient, *, kind: CatalogKind, operation: BulkOperation, body: dict[str, Any]
    ) -> dict[str, Any]:
        job = original(client, kind=kind, operation=operation, body=body)
        log.sent.append((f"{kind}-{operation}", time.perf_counter()))
        return job

    with mock.patch.object(KlaviyoClient, "bulk_job_create", logged):
        yield log


def machine_line(*, load_before_first: float) -> str:
    """CPUs and load: other work on the machine slows a bench that shares its two cores."""
    return (
        f"machine: {os.cpu_count()} CPUs; load average (1 min) {load_before_first:.1f} at the "
        f"start of the measured runs, {os.getloadavg()[0]:.1f} at the end"
    )


def cpu_seconds() -> float:
    """User and system CPU time of this process (all its threads) so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def machine_busy_seconds() -> float:
    """CPU time every core of the machine has spent busy so far, whoever's work it was."""
    with Path("/proc/stat").open() as stat:
        ticks = [int(value) for value in stat.readline().split()[1:]]
    idle = ticks[3] + ticks[4]  # idle and waiting for I/O
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def rss_now_kb() -> int:
    """This process's resident set size now, in KB (Linux)."""
    with Path("/proc/self/statm").open() as statm:
        pages = int(statm.read().split()[1])
    return pages * resource.getpagesize() // 1024


def rss_peak_kb() -> int:
    """The peak resident set size of this process so far (``ru_maxrss`` is in KB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


# --- generated data -----------------------------------------------------------------------------


def shop_reference_rows_create() -> None:
    """Languages, warehouses, allocation rules, pricelists, markets, ship-to countries, states."""
    from shop.models import (
        AllocationRule,
        AllocationRuleWarehouse,
        Country,
        Language,
        Market,
        Pricelist,
        State,
        Warehouse,
    )

    languages = {
        code: Language.objects.create(code=code, name=name, is_default=code == "en")
        for code, name in (("en", "English"), ("sv", "Swedish"), ("de", "German"))
    }
    warehouses = {name: Warehouse.objects.create(name=name) for name in WAREHOUSES}
    rules = {}
    for rule_name, rule_warehouses in ALLOCATION_RULES.items():
        rules[rule_name] = AllocationRule.objects.create(name=rule_name)
        for position, name in enumerate(rule_warehouses):
            AllocationRuleWarehouse.objects.create(
                allocation_rule=rules[rule_name], warehouse=warehouses[name], position=position
            )
    markets = {
        name: Market.objects.create(name=name, allocation_rule=rules[rule])
        for name, rule in MARKETS.items()
    }
    pricelists = {
        name: Pricelist.objects.create(name=name, currency=currency)
        for name, currency in PRICELISTS.items()
    }
    for code, (name, market, pricelist, language, states) in COUNTRIES.items():
        country = Country.objects.create(
            code=code,
            name=name,
            market=markets[market],
            pricelist=pricelists[pricelist],
            language=languages[language],
            is_ship_to=True,
        )
        State.objects.bulk_create(State(country=country, code=s, name=s) for s in states)


def display_item_id(index: int) -> int:
    return 500_000 + index


def size_id(index: int, size_index: int, *, sizes_per_item: int) -> int:
    return 1_000_000 + index * sizes_per_item + size_index


def shop_catalog_rows_create(
    *,
    items: int,
    sizes_per_item: int = 0,
    physical_by_warehouse: dict[str, int] | None = None,
    priced_everywhere: bool = False,
) -> None:
    """``items`` published display items, a product per two, written ``ROWS_PER_BATCH`` at a time.

    Each has 1-2 images, prices in 2-3 pricelists (all three with ``priced_everywhere``, so that
    it is sold in every ship-to country) and 1-2 translations; with ``sizes_per_item``
    it has sizes (SKU ``SKU-<size id>``) with ``physical_by_warehouse`` stock each. Batches keep
    this process's memory low, so its peak RSS stays the sync's to measure.
    """
    from shop.models import (
        DisplayItem,
        DisplayItemTranslation,
        Language,
        Price,
        Pricelist,
        Product,
        Size,
        Stock,
        Variant,
        Warehouse,
    )

    languages = dict(Language.objects.values_list("code", "id"))
    pricelists = dict(Pricelist.objects.values_list("name", "id"))
    warehouses = dict(Warehouse.objects.values_list("name", "id"))
    size_names = ("XS", "S", "M", "L", "XL", "XXL")
    for start in range(0, items, ROWS_PER_BATCH):
        indexes = range(start, min(start + ROWS_PER_BATCH, items))
        products: list[Product] = []
        variants: list[Variant] = []
        display_items: list[DisplayItem] = []
        translations: list[DisplayItemTranslation] = []
        prices: list[Price] = []
        sizes: list[Size] = []
        stock: list[Stock] = []
        for index in indexes:
            product_id = 100_000 + index // 2
            variant_id = 200_000 + index
            item_id = display_item_id(index)
            if index % 2 == 0:  # batches are even-sized: a product never spans two
                products.append(
                    Product(
                        id=product_id,
                        number=f"P-{product_id}",
                        name=f"Product {product_id}",
                        brand="Acme",
                        collection="SS27",
                        product_type="Tops",
                    )
                )
            variants.append(
                Variant(id=variant_id, product_id=product_id, name=f"Colour {index % 2}")
            )
            images = [f"https://cdn.example.com/{variant_id}.jpg"]
            if index % 3 == 0:
                images.append(f"https://cdn.example.com/{variant_id}-back.jpg")
            display_items.append(
                DisplayItem(
                    id=item_id,
                    variant_id=variant_id,
                    uri=f"item-{variant_id}",
                    description=f"A fine garment, number {index}.",
                    images=images,
                    published=True,
                )
            )
            translated = ("sv", "de") if index % 2 == 0 else ("sv",)
            translations.extend(
                DisplayItemTranslation(
                    display_item_id=item_id,
                    language_id=languages[code],
                    name=f"Plagg {variant_id} ({code})",
                    uri=f"{code}-plagg-{variant_id}",
                )
                for code in translated
            )
            priced = (
                ("SEK", "USD")
                if index % 3 == 0 and not priced_everywhere
                else ("SEK", "EUR", "USD")
            )
            prices.extend(
                Price(
                    display_item_id=item_id,
                    pricelist_id=pricelists[name],
                    amount=Decimal(100 + index % 900)
                    if name == "SEK"
                    else Decimal(10 + index % 90),
                )
                for name in priced
            )
            for size_index in range(sizes_per_item):
                sid = size_id(index, size_index, sizes_per_item=sizes_per_item)
                sizes.append(
                    Size(
                        id=sid,
                        variant_id=variant_id,
                        name=size_names[size_index % len(size_names)],
                        sku=f"SKU-{sid}",
                        ean=f"{7_350_000_000_000 + sid}",
                    )
                )
                stock.extend(
                    Stock(size_id=sid, warehouse_id=warehouses[name], physical=physical)
                    for name, physical in (physical_by_warehouse or {}).items()
                )
        Product.objects.bulk_create(products)
        Variant.objects.bulk_create(variants)
        DisplayItem.objects.bulk_create(display_items)
        DisplayItemTranslation.objects.bulk_create(translations)
        Price.objects.bulk_create(prices)
        Size.objects.bulk_create(sizes)
        Stock.objects.bulk_create(stock)


# --- the bench ----------------------------------------------------------------------------------


@dataclass
class Check:
    name: str
    value: str
    target: str
    met: bool


def table_print(rows: list[tuple[str, str]], checks: list[Check]) -> bool:
    """Print the figures and the checks; answers whether every check was met."""
    width = max(len(name) for name, _ in rows + [(c.name, "") for c in checks])
    for name, value in rows:
        print(f"  {name:<{width}}  {value:>14}")
    print()
    for check in checks:
        verdict = "ok" if check.met else "MISSED"
        print(f"  {check.name:<{width}}  {check.value:>14}  target {check.target:<12} {verdict}")
    return all(check.met for check in checks)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument(
        "--keep-db", action="store_true", help=f"keep the database {BENCH_DATABASE} afterwards"
    )
    args = parser.parse_args(argv)

    with bench_environment(database=BENCH_DATABASE, keep_db=args.keep_db) as sandbox:
        from klaviyo_sync.selectors import integration_settings_get
        from klaviyo_sync.services.catalog import catalog_sync_run

        started = time.perf_counter()
        shop_reference_rows_create()
        shop_catalog_rows_create(items=args.items)
        integration_settings_get()
        generated = time.perf_counter() - started
        gc.collect()

        rss_before, peak_before = rss_now_kb(), rss_peak_kb()
        load_before = os.getloadavg()[0]
        cpu_before, sandbox_before = cpu_seconds(), sandbox.cpu_seconds()
        machine_before = machine_busy_seconds()
        with bulk_jobs_logged() as log:
            started = time.perf_counter()
            first = catalog_sync_run(full=True)
            first_seconds = time.perf_counter() - started
        peak_first = rss_peak_kb()
        first_cpu = cpu_seconds() - cpu_before
        sandbox_cpu = sandbox.cpu_seconds() - sandbox_before
        machine_busy = machine_busy_seconds() - machine_before
        last_job_seconds = (log.last() or started) - started
        jobs_by = {
            seconds: sum(1 for _, moment in log.sent if moment - started <= seconds)
            for seconds in (20, 40, 60)
        }
        after_first = sandbox_summary(sandbox.url)

        started = time.perf_counter()
        second = catalog_sync_run(full=True)
        second_seconds = time.perf_counter() - started
        peak_second = rss_peak_kb()
        after_second = sandbox_summary(sandbox.url)

    jobs = after_first.count("POST /api/catalog-item-bulk-create-jobs")
    floor = math.ceil(args.items / RESOURCES_PER_JOB) / JOBS_PER_MINUTE * 60
    second_writes = after_second.writes - after_first.writes
    print(
        f"catalog: {args.items:,} display items, generated in {generated:.1f} s; "
        f"sandbox jobs take {SANDBOX_JOB_SECONDS} s"
    )
    print(machine_line(load_before_first=load_before))
    print(f"first run: {first.state}, done {first.done}, failed {first.failed}")
    print(f"second run: {second.state}, unchanged {second.unchanged}, done {second.done}")
    print()
    rows = [
        ("quota floor (s)", f"{floor:.1f}"),
        ("first run: wall time (s)", f"{first_seconds:.1f}"),
        ("first run: last job sent at (s)", f"{last_job_seconds:.1f}"),
        ("first run: jobs accepted by 20 / 40 / 60 s", " / ".join(map(str, jobs_by.values()))),
        ("first run: CPU time of this process (s)", f"{first_cpu:.1f}"),
        ("first run: CPU time of the sandbox (s)", f"{sandbox_cpu:.1f}"),
        ("first run: busy cores, all processes", f"{machine_busy / first_seconds:.2f}"),
        ("first run: wall / floor", f"{first_seconds / floor:.2f}"),
        ("first run: calls (run record)", str(first.calls)),
        ("first run: calls (sandbox)", str(sum(after_first.calls.values()))),
        ("first run: item bulk create jobs", str(jobs)),
        ("first run: job reads", str(after_first.count("GET /api/catalog-item-bulk"))),
        (
            "first run: other calls",
            str(
                sum(after_first.calls.values())
                - jobs
                - after_first.count("GET /api/catalog-item-bulk")
            ),
        ),
        ("first run: 429s received", str(after_first.throttled)),
        ("items in the sandbox", str(after_first.items)),
        ("RSS before the sync (MB)", f"{rss_before / 1024:.0f}"),
        ("peak RSS before the sync (MB)", f"{peak_before / 1024:.0f}"),
        ("peak RSS after the first run (MB)", f"{peak_first / 1024:.0f}"),
        ("peak RSS - RSS before (MB)", f"{(peak_first - rss_before) / 1024:.0f}"),
        ("second run: wall time (s)", f"{second_seconds:.1f}"),
        (
            "second run: calls",
            str(sum(after_second.calls.values()) - sum(after_first.calls.values())),
        ),
        ("second run: writes", str(second_writes)),
        ("peak RSS after the second run (MB)", f"{peak_second / 1024:.0f}"),
    ]
    checks = [
        Check(
            "first run completes every item",
            f"{first.done}/{args.items}",
            "all",
            first.state == "completed" and first.done == args.items == after_first.items,
        ),
        Check(
            "first run wall / floor",
            f"{first_seconds / floor:.2f}",
            f"<= {WALL_TARGET_RATIO}",
            first_seconds <= WALL_TARGET_RATIO * floor,
        ),
        Check(
            "peak RSS (MB)",
            f"{peak_first / 1024:.0f}",
            f"< {PEAK_RSS_TARGET_MB}",
            peak_first < PEAK_RSS_TARGET_MB * 1024,
        ),
        Check("429s received", str(after_first.throttled), "0", after_first.throttled == 0),
        Check("second run writes", str(second_writes), "0", second_writes == 0),
    ]
    return 0 if table_print(rows, checks) else 1


if __name__ == "__main__":
    sys.exit(main())
