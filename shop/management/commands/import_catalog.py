"""``python manage.py import_catalog PATH``: load the catalog JSON of CONTRACT §7.

Validates the whole file first and reports every problem with its JSON path, then upserts in one
transaction. Nothing absent from the file is deleted: to withdraw an item, set
``"published": false``. The work is done by ``shop.catalog_import.catalog_import_run``.
"""

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from shop.catalog_import import CatalogImportResult, CatalogInvalid, catalog_import_run
from shop.models import Size

# Sizes whose changed stock the command names, unless asked for all of them.
STOCK_CHANGES_LISTED = 20


class Command(BaseCommand):
    help = (
        "Import the catalog JSON (languages, warehouses, allocation rules, pricelists, markets, "
        "countries, products) as an upsert: running it twice changes nothing. Every invalid "
        "entry is reported with its JSON path and then nothing is changed. Nothing absent from "
        'the file is deleted; to withdraw an item, set "published": false. '
        "An allocation rule's warehouses are replaced by the file's list."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path, help="the catalog JSON file")
        parser.add_argument(
            "--no-progress",
            action="store_true",
            help="no progress bar (it is also off when stderr is not a terminal)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["path"]
        data = _load(path)
        try:
            result = catalog_import_run(data=data, progress=not options["no_progress"])
        except CatalogInvalid as exc:
            for problem in exc.problems:
                self.stderr.write(str(problem))
            raise CommandError(f"{exc}; nothing was changed") from exc
        if options["verbosity"] >= 2:
            self._write_counts(result)
        self.stdout.write(result.summary())
        self._write_stock_changed(result, every=options["verbosity"] >= 2)

    def _write_stock_changed(self, result: CatalogImportResult, *, every: bool) -> None:
        """Which sizes' live stock the file changed, by SKU: the figures shoppers and Klaviyo
        see move (at most ``STOCK_CHANGES_LISTED`` unless ``-v 2``)."""
        size_ids = sorted(result.stock_changed_size_ids)
        if not size_ids:
            return
        shown = size_ids if every else size_ids[:STOCK_CHANGES_LISTED]
        skus = Size.objects.filter(id__in=shown).order_by("sku").values_list("sku", flat=True)
        more = len(size_ids) - len(shown)
        tail = f" and {more} more (-v 2 lists them all)" if more else ""
        self.stdout.write(f"  live stock changed: {', '.join(skus)}{tail}")

    def _write_counts(self, result: CatalogImportResult) -> None:
        for model, counts in result.counts.items():
            deleted = f", removed {counts.deleted}" if counts.deleted else ""
            self.stdout.write(
                f"  {model}: created {counts.created}, updated {counts.updated}{deleted}, "
                f"unchanged {counts.unchanged}"
            )


def _load(path: Path) -> object:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"cannot read {path}: {exc}; nothing was changed") from exc
    try:
        return json.loads(text)
    # ValueError also covers integers too long to convert; RecursionError absurd nesting.
    except (ValueError, RecursionError) as exc:
        raise CommandError(f"{path} is not valid JSON: {exc}; nothing was changed") from exc
