from dataclasses import dataclass

import pytest

from shop.models import Country, Size, Warehouse
from tests.factories import (
    AllocationRuleFactory,
    CountryFactory,
    MarketFactory,
    SizeFactory,
    StateFactory,
    StockFactory,
    WarehouseFactory,
)


@dataclass
class Locations:
    """Sweden served by Stockholm; the US by New Jersey then Stockholm; Germany by Berlin."""

    stockholm: Warehouse
    new_jersey: Warehouse
    berlin: Warehouse
    sweden: Country
    usa: Country
    germany: Country
    size: Size


@pytest.fixture
def locations(db) -> Locations:
    stockholm = WarehouseFactory(name="Stockholm")
    new_jersey = WarehouseFactory(name="New Jersey")
    berlin = WarehouseFactory(name="Berlin")

    def country(code, warehouses):
        rule = AllocationRuleFactory(warehouses=warehouses)
        return CountryFactory(code=code, market=MarketFactory(allocation_rule=rule))

    sweden = country("SE", [stockholm])
    usa = country("US", [new_jersey, stockholm])
    StateFactory(country=usa, code="NY")
    germany = country("DE", [berlin])
    size = SizeFactory(sku="HD-1-BLK-M")
    return Locations(stockholm, new_jersey, berlin, sweden, usa, germany, size)


@pytest.fixture
def stock(locations):
    """Put stock rows for ``locations.size``: ``stock(stockholm=(physical, allocated), ...)``."""

    def put(**by_warehouse: tuple[int, int]) -> None:
        for attribute, (physical, allocated) in by_warehouse.items():
            StockFactory(
                size=locations.size,
                warehouse=getattr(locations, attribute),
                physical=physical,
                allocated=allocated,
            )

    return put
