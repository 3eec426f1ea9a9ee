"""Writes to the catalog and stock."""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from config.api.errors import InvalidInput
from shop.hooks import announce_stock_changed
from shop.models import COUNT_MAX, Size, Stock, Warehouse


@dataclass(frozen=True)
class StockLevel:
    """The absolute stock of one size in one warehouse."""

    size_id: int
    warehouse_id: int
    physical: int
    allocated: int = 0


@dataclass(frozen=True)
class StockSetResult:
    written: int
    changed_size_ids: frozenset[int]


def stock_set(*, levels: Iterable[StockLevel]) -> StockSetResult:
    """Set absolute stock levels, all or nothing, and announce the sizes whose stock changed.

    The one way stock changes: the admin, ``import_catalog``, ``set_stock`` and the Integration API
    all come here. Rows whose figures are already right are not written, so repeating a call
    changes and announces nothing. Later entries for the same (size, warehouse) win. Callers
    validate; negative figures are refused here as a last line.
    """
    wanted: dict[tuple[int, int], StockLevel] = {}
    for level in levels:
        if level.physical < 0 or level.allocated < 0:
            raise ValueError(f"negative stock for size {level.size_id}")
        wanted[(level.size_id, level.warehouse_id)] = level
    if not wanted:
        return StockSetResult(written=0, changed_size_ids=frozenset())

    with transaction.atomic():
        size_ids = {size_id for size_id, _ in wanted}
        # Rows are locked, and written, in one order, (size, warehouse): two calls touching the
        # same rows in different orders would otherwise deadlock (PostgreSQL aborts one, a 500).
        # Plain tuples, not model instances: a 10,000-entry call reads 10,000 rows.
        existing = {
            (size_id, warehouse_id): figures
            for size_id, warehouse_id, *figures in Stock.objects.select_for_update()
            .filter(size_id__in=size_ids)
            .order_by("size_id", "warehouse_id")
            .values_list("size_id", "warehouse_id", "physical", "allocated")
        }
        now = timezone.now()
        to_write = [
            Stock(
                size_id=level.size_id,
                warehouse_id=level.warehouse_id,
                physical=level.physical,
                allocated=level.allocated,
                updated_at=now,
            )
            for key, level in sorted(wanted.items())
            if existing.get(key) != [level.physical, level.allocated]
        ]
        # One upsert writes new and changed rows alike (far faster than bulk_update for large
        # batches), and turns a concurrent insert of the same (size, warehouse) between our read
        # and our write into a last-writer-wins update instead of an IntegrityError.
        Stock.objects.bulk_create(
            to_write,
            batch_size=1000,
            update_conflicts=True,
            unique_fields=["size", "warehouse"],
            update_fields=["physical", "allocated", "updated_at"],
        )
        changed = frozenset(row.size_id for row in to_write)
        announce_stock_changed(size_ids=changed)
    return StockSetResult(written=len(wanted), changed_size_ids=changed)


@dataclass(frozen=True)
class StockEntry:
    """An absolute stock level named the way integrations name things: SKU and warehouse name."""

    sku: str
    warehouse: str
    physical: int
    allocated: int = 0


def _figure_problem(value: int) -> str | None:
    """What is wrong with a stock figure, or None: it must fit the column (0 to COUNT_MAX)."""
    if value < 0:
        return "must be zero or more"
    if value > COUNT_MAX:
        return f"must be at most {COUNT_MAX}"
    return None


def stock_entries_apply(
    *,
    entries: list[StockEntry],
    path: str = "stock",
    problems: Mapping[str, str] | None = None,
) -> int:
    """Validate every entry against the catalog, then apply all of them or none.

    Errors are keyed by the entry's path (``stock[3].sku``) so the caller sees every problem at
    once: figures outside 0..COUNT_MAX (the column's range), unknown SKUs and warehouses, and an
    entry repeating an earlier (SKU, warehouse), which is refused because which of two absolute
    figures is meant cannot be guessed. ``problems`` are those the caller already found in the
    request's structure (an entry it could read only in part stands in ``entries`` with what
    it could read); they are reported in the same answer and win on the same path.

    Raises ``InvalidInput`` and changes nothing when there is any problem. Returns how many
    entries were applied.
    """
    size_ids = dict(Size.objects.filter(sku__in={e.sku for e in entries}).values_list("sku", "id"))
    warehouse_ids = dict(
        Warehouse.objects.filter(name__in={e.warehouse for e in entries}).values_list("name", "id")
    )
    errors: dict[str, str] = {}
    first_index: dict[tuple[str, str], int] = {}
    # Entries read only in part: a name they lack ("") is a structural problem, not a catalog one.
    partial = {key.partition(".")[0] for key in problems or {}}
    for index, entry in enumerate(entries):
        where = f"{path}[{index}]"
        if entry.sku not in size_ids and (entry.sku or where not in partial):
            errors[f"{where}.sku"] = f"unknown SKU {entry.sku}"
        if entry.warehouse not in warehouse_ids and (entry.warehouse or where not in partial):
            errors[f"{where}.warehouse"] = f"unknown warehouse {entry.warehouse}"
        for name, value in (("physical", entry.physical), ("allocated", entry.allocated)):
            problem = _figure_problem(value)
            if problem:
                errors[f"{where}.{name}"] = problem
        if not (entry.sku and entry.warehouse):
            continue  # not read whole: its own problems are already in ``problems``
        earlier = first_index.setdefault((entry.sku, entry.warehouse), index)
        if earlier != index:
            errors[f"{where}.sku"] = (
                f"{entry.sku} in {entry.warehouse} is already at {path}[{earlier}]"
            )
    errors.update(problems or {})
    if errors:
        raise InvalidInput(errors)
    stock_set(
        levels=[
            StockLevel(
                size_id=size_ids[e.sku],
                warehouse_id=warehouse_ids[e.warehouse],
                physical=e.physical,
                allocated=e.allocated,
            )
            for e in entries
        ]
    )
    return len(entries)
