"""The one way stock changes, and what it announces."""

import pytest
from django.core.management import CommandError, call_command

from config.api.errors import InvalidInput
from shop.hooks import stock_changed
from shop.models import Stock
from shop.services import StockEntry, StockLevel, stock_entries_apply, stock_set


@pytest.fixture
def announced(django_capture_on_commit_callbacks):
    """Size ids announced by ``stock_changed``, one set per announcement."""
    received: list[frozenset[int]] = []

    def receiver(sender, size_ids, **kwargs):
        received.append(size_ids)

    stock_changed.connect(receiver)
    yield received
    stock_changed.disconnect(receiver)


def test_stock_set_writes_and_announces_after_commit(
    locations, announced, django_capture_on_commit_callbacks
):
    level = StockLevel(size_id=locations.size.id, warehouse_id=locations.stockholm.id, physical=4)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        result = stock_set(levels=[level])
        assert announced == []  # nothing before commit

    for callback in callbacks:
        callback()
    assert result.changed_size_ids == {locations.size.id}
    assert announced == [frozenset({locations.size.id})]
    row = Stock.objects.get()
    assert (row.physical, row.allocated, row.free_to_allocate) == (4, 0, 4)


def test_setting_the_same_figures_again_writes_and_announces_nothing(
    locations, announced, django_capture_on_commit_callbacks
):
    level = StockLevel(
        size_id=locations.size.id, warehouse_id=locations.stockholm.id, physical=4, allocated=1
    )
    with django_capture_on_commit_callbacks(execute=True):
        stock_set(levels=[level])
    updated_at = Stock.objects.get().updated_at

    with django_capture_on_commit_callbacks(execute=True):
        result = stock_set(levels=[level])

    assert result.changed_size_ids == frozenset()
    assert len(announced) == 1
    assert Stock.objects.get().updated_at == updated_at


def test_a_negative_level_is_refused_and_nothing_is_written(locations):
    good = StockLevel(size_id=locations.size.id, warehouse_id=locations.stockholm.id, physical=4)
    bad = StockLevel(size_id=locations.size.id, warehouse_id=locations.berlin.id, physical=-1)

    with pytest.raises(ValueError, match="negative"):
        stock_set(levels=[good, bad])
    assert not Stock.objects.exists()


def test_entries_by_sku_and_warehouse_are_all_checked_before_any_is_applied(locations):
    entries = [
        StockEntry(sku="HD-1-BLK-M", warehouse="Stockholm", physical=3),
        StockEntry(sku="NOPE", warehouse="Stockholm", physical=3),
        StockEntry(sku="HD-1-BLK-M", warehouse="Atlantis", physical=3),
        StockEntry(sku="HD-1-BLK-M", warehouse="Berlin", physical=-2, allocated=-1),
        StockEntry(sku="HD-1-BLK-M", warehouse="Stockholm", physical=5),
    ]

    with pytest.raises(InvalidInput) as raised:
        stock_entries_apply(entries=entries)

    assert raised.value.errors == {
        "stock[1].sku": "unknown SKU NOPE",
        "stock[2].warehouse": "unknown warehouse Atlantis",
        "stock[3].physical": "must be zero or more",
        "stock[3].allocated": "must be zero or more",
        "stock[4].sku": "HD-1-BLK-M in Stockholm is already at stock[0]",
    }
    assert not Stock.objects.exists()


def test_set_stock_changes_one_size_in_one_warehouse(
    locations, announced, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        call_command("set_stock", "HD-1-BLK-M", "New Jersey", "12", "--allocated", "2")

    row = Stock.objects.get()
    assert (row.warehouse, row.physical, row.allocated) == (locations.new_jersey, 12, 2)
    assert announced == [frozenset({locations.size.id})]


def test_set_stock_names_what_is_wrong(locations):
    with pytest.raises(CommandError, match="unknown SKU NOPE; warehouse: unknown warehouse Mars"):
        call_command("set_stock", "NOPE", "Mars", "1")
    with pytest.raises(CommandError, match="physical: must be zero or more"):
        call_command("set_stock", "HD-1-BLK-M", "Stockholm", "-1")
    assert not Stock.objects.exists()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["2147483648"], "physical: must be at most 2147483647"),
        ([str(2**63)], "physical: must be at most 2147483647"),
        (["1", "--allocated", str(10**30)], "allocated: must be at most 2147483647"),
        (["2³"], "is not a whole number in ASCII digits"),
        (["١٢"], "is not a whole number in ASCII digits"),
    ],
)
def test_set_stock_refuses_figures_outside_the_column_or_not_in_ascii_digits(
    locations, arguments, message
):
    with pytest.raises(CommandError, match=message):
        call_command("set_stock", "HD-1-BLK-M", "Stockholm", *arguments)
    assert not Stock.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_calls_on_the_same_new_rows_in_different_orders_do_not_deadlock():
    """Rows are locked and written in one order: PostgreSQL aborted one of two calls that
    touched the same (size, warehouse) rows in different orders, which answered 500."""
    import random
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    from tests.factories import SizeFactory, WarehouseFactory

    sizes = [SizeFactory() for _ in range(10)]
    warehouses = [WarehouseFactory() for _ in range(4)]
    levels = [
        StockLevel(size_id=size.id, warehouse_id=warehouse.id, physical=5)
        for size in sizes
        for warehouse in warehouses
    ]

    def one_call(seed: int) -> None:
        try:
            shuffled = list(levels)
            random.Random(seed).shuffle(shuffled)
            stock_set(levels=[StockLevel(**{**vars(lv), "physical": seed}) for lv in shuffled])
        finally:
            connection.close()

    for _ in range(3):
        Stock.objects.all().delete()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(one_call, range(1, 17)))  # raises a deadlock's error, if any

    assert Stock.objects.count() == 40
