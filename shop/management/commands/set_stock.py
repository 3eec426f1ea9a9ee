from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from config.api.errors import InvalidInput
from config.api.fields import ascii_integer_argument, text_storable
from shop.services import StockEntry, stock_entries_apply


class Command(BaseCommand):
    help = "Set the absolute stock of one size (by SKU) in one warehouse (by name)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("sku")
        parser.add_argument("warehouse")
        parser.add_argument("physical", type=ascii_integer_argument)
        parser.add_argument("--allocated", type=ascii_integer_argument, default=0)

    def handle(self, *args: Any, **options: Any) -> None:
        for name in ("sku", "warehouse"):
            if not text_storable(options[name]):
                raise CommandError(f"{name}: must be text without NUL or undecodable bytes")
        entry = StockEntry(
            sku=options["sku"],
            warehouse=options["warehouse"],
            physical=options["physical"],
            allocated=options["allocated"],
        )
        try:
            stock_entries_apply(entries=[entry], path="entry")
        except InvalidInput as exc:
            raise CommandError(
                "; ".join(
                    f"{field.removeprefix('entry[0].')}: {msg}" for field, msg in exc.errors.items()
                )
            ) from exc
        self.stdout.write(
            f"{entry.sku} in {entry.warehouse}: "
            f"physical {entry.physical}, allocated {entry.allocated}"
        )
