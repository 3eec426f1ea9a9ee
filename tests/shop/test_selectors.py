"""Availability of a size for a ship-to location, through market and allocation rule."""

from shop.selectors import availability_by_size_for_ship_to, availability_for_ship_to
from tests.factories import SizeFactory, StockFactory


def test_availability_sums_free_to_allocate_over_the_rules_warehouses(locations, stock):
    stock(stockholm=(5, 1), new_jersey=(10, 3), berlin=(50, 0))

    assert availability_for_ship_to(size_id=locations.size.id, country_code="SE") == 4
    assert availability_for_ship_to(size_id=locations.size.id, country_code="US") == 4 + 7
    assert availability_for_ship_to(size_id=locations.size.id, country_code="DE") == 50


def test_over_allocated_stock_counts_as_zero_not_negative(locations, stock):
    stock(stockholm=(2, 9), new_jersey=(6, 0))

    assert availability_for_ship_to(size_id=locations.size.id, country_code="SE") == 0
    assert availability_for_ship_to(size_id=locations.size.id, country_code="US") == 6


def test_a_size_without_stock_rows_or_an_unknown_country_has_none(locations, stock):
    assert availability_for_ship_to(size_id=locations.size.id, country_code="SE") == 0
    stock(stockholm=(5, 0))
    assert availability_for_ship_to(size_id=locations.size.id, country_code="XX") == 0


def test_a_country_that_is_not_ship_to_has_no_availability(locations, stock):
    stock(stockholm=(5, 0))
    locations.sweden.is_ship_to = False
    locations.sweden.save()

    assert availability_for_ship_to(size_id=locations.size.id, country_code="SE") == 0


def test_changing_a_rules_warehouses_changes_availability(locations, stock):
    stock(stockholm=(5, 0), berlin=(7, 0))
    rule = locations.germany.market.allocation_rule
    rule.rule_warehouses.create(warehouse=locations.stockholm, position=1)

    assert availability_for_ship_to(size_id=locations.size.id, country_code="DE") == 12


def test_availability_for_many_sizes_matches_one_at_a_time(
    locations, stock, django_assert_num_queries
):
    stock(stockholm=(5, 1), new_jersey=(3, 0))
    other = SizeFactory()
    StockFactory(size=other, warehouse=locations.new_jersey, physical=9)
    no_stock = SizeFactory()
    ids = [locations.size.id, other.id, no_stock.id]

    with django_assert_num_queries(1):
        figures = availability_by_size_for_ship_to(size_ids=ids, country_code="US")

    assert figures == {
        size_id: availability_for_ship_to(size_id=size_id, country_code="US") for size_id in ids
    }
    assert figures == {locations.size.id: 7, other.id: 9, no_stock.id: 0}
