"""Time ``import_catalog`` on a generated catalog: into an empty database, again, new stock.

    .venv/bin/python bench/import_catalog.py [--sizes 10000]

Uses ``DATABASE_URL`` when it is set (the catalog's ids must not collide with what is there).
Otherwise it drops and re-creates the throwaway PostgreSQL database ``backinstock_bench`` on
127.0.0.1 (as user postgres; ``BENCH_POSTGRES_URL`` overrides the server to connect to) and
migrates it. Settings are ``config.settings.test`` unless ``DJANGO_SETTINGS_MODULE`` says else.
"""

import argparse
import json
import os
import random
import re
import sys
import tempfile
import time
from io import StringIO
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH_DATABASE = "backinstock_bench"
SIZES_PER_DISPLAY_ITEM = 5
VARIANTS_PER_PRODUCT = 2
WAREHOUSES = ["Stockholm", "Berlin", "New Jersey"]
PRICELISTS = {"SEK": "SEK", "EUR": "EUR", "USD": "USD"}


def catalog_generate(*, sizes: int, seed: int = 1) -> dict[str, Any]:
    """A catalog with ``sizes`` sizes: 5 per display item, 2 variants per product."""
    rng = random.Random(seed)
    products: list[dict[str, Any]] = []
    variant_count = -(-sizes // SIZES_PER_DISPLAY_ITEM)
    for variant_index in range(variant_count):
        if variant_index % VARIANTS_PER_PRODUCT == 0:
            product_id = 100_000 + variant_index // VARIANTS_PER_PRODUCT
            products.append(
                {
                    "id": product_id,
                    "number": f"P-{product_id}",
                    "name": f"Product {product_id}",
                    "brand": "Acme",
                    "collection": "SS27",
                    "productType": "Tops",
                    "variants": [],
                }
            )
        variant_id = 200_000 + variant_index
        first_size = variant_index * SIZES_PER_DISPLAY_ITEM
        last_size = min(first_size + SIZES_PER_DISPLAY_ITEM, sizes)
        size_entries = []
        for size_index in range(first_size, last_size):
            stocked = rng.sample(WAREHOUSES, 2)
            size_entries.append(
                {
                    "id": 1_000_000 + size_index,
                    "name": ["XS", "S", "M", "L", "XL"][size_index % SIZES_PER_DISPLAY_ITEM],
                    "sku": f"SKU-{size_index:07d}",
                    "ean": f"{7350000000000 + size_index}",
                    "stock": {
                        name: {"physical": rng.randint(0, 40), "allocated": rng.randint(0, 3)}
                        for name in stocked
                    },
                }
            )
        products[-1]["variants"].append(
            {
                "id": variant_id,
                "name": f"Colour {variant_index % VARIANTS_PER_PRODUCT}",
                "displayItemId": 500_000 + variant_index,
                "uri": f"item-{variant_id}",
                "published": True,
                "description": "A fine garment.",
                "images": [f"https://cdn.example.com/{variant_id}.jpg"],
                "translations": {
                    "sv": {"name": f"Plagg {variant_id}", "uri": f"plagg-{variant_id}"}
                },
                "prices": {"SEK": 499.0, "EUR": 49.0, "USD": 55.0},
                "sizes": size_entries,
            }
        )
    return {
        "languages": [
            {"code": "en", "name": "English", "default": True},
            {"code": "sv", "name": "Swedish"},
        ],
        "warehouses": [{"name": name} for name in WAREHOUSES],
        "allocationRules": [
            {"name": "EU", "warehouses": ["Stockholm", "Berlin"]},
            {"name": "US", "warehouses": ["New Jersey", "Stockholm"]},
        ],
        "pricelists": [{"name": name, "currency": code} for name, code in PRICELISTS.items()],
        "markets": [
            {"name": "Sweden", "allocationRule": "EU"},
            {"name": "Germany", "allocationRule": "EU"},
            {"name": "USA", "allocationRule": "US"},
        ],
        "countries": [
            {
                "code": "SE",
                "name": "Sweden",
                "market": "Sweden",
                "pricelist": "SEK",
                "language": "sv",
            },
            {"code": "DE", "name": "Germany", "market": "Germany", "pricelist": "EUR"},
            {
                "code": "US",
                "name": "United States",
                "market": "USA",
                "pricelist": "USD",
                "language": "en",
                "states": [
                    {"code": "NY", "name": "New York"},
                    {"code": "CA", "name": "California"},
                ],
            },
        ],
        "products": products,
    }


def database_recreate() -> str:
    """Drop and create the bench database; returns its URL."""
    import psycopg

    server = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    with psycopg.connect(server, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {BENCH_DATABASE} WITH (FORCE)")
        connection.execute(f"CREATE DATABASE {BENCH_DATABASE}")
    return server.rsplit("/", 1)[0] + f"/{BENCH_DATABASE}"


def stock_bump(catalog: dict[str, Any]) -> None:
    """Add one to every physical figure: a re-import where all stock changed and nothing else."""
    for product in catalog["products"]:
        for variant in product["variants"]:
            for size in variant["sizes"]:
                for figures in size["stock"].values():
                    figures["physical"] += 1


def import_timed(path: Path) -> tuple[float, str]:
    """Run the command once; returns the seconds it took and its summary line."""
    from django.core.management import call_command

    stdout = StringIO()
    started = time.perf_counter()
    call_command("import_catalog", str(path), "--no-progress", stdout=stdout)
    return time.perf_counter() - started, stdout.getvalue().strip()


def rows_written(summary: str) -> int:
    match = re.search(r"created (\d+), updated (\d+)(?:, removed (\d+))?", summary)
    assert match is not None, summary
    return sum(int(group or 0) for group in match.groups())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, default=10_000)
    args = parser.parse_args(argv)

    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    if not os.environ.get("DATABASE_URL"):
        os.environ["DATABASE_URL"] = database_recreate()

    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)

    catalog = catalog_generate(sizes=args.sizes)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "catalog.json"
        path.write_text(json.dumps(catalog), encoding="utf-8")
        megabytes = path.stat().st_size / 1e6
        runs = [import_timed(path), import_timed(path)]
        stock_bump(catalog)
        path.write_text(json.dumps(catalog), encoding="utf-8")
        runs.append(import_timed(path))

    print(f"catalog: {args.sizes} sizes, {megabytes:.1f} MB; {os.cpu_count()} CPUs")
    for label, (_, summary) in zip(["first run", "second run", "stock run"], runs, strict=True):
        print(f"{label + ':':<12}{summary}")
    print()
    header = ["sizes", "first run (s)", "second run (s)", "stock run (s)", "rows written"]
    print("  ".join(f"{title:>14}" for title in header))
    written = " / ".join(str(rows_written(summary)) for _, summary in runs[:2])
    cells = [str(args.sizes), *(f"{seconds:.2f}" for seconds, _ in runs), written]
    print("  ".join(f"{cell:>14}" for cell in cells))
    print()
    print("stock run: every physical figure changed, nothing else; rows written are catalog rows")


if __name__ == "__main__":
    main()
