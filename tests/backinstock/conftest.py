from dataclasses import dataclass

import pytest

from shop.models import Country, Language, Size, State
from tests.factories import (
    AllocationRuleFactory,
    CountryFactory,
    DisplayItemFactory,
    LanguageFactory,
    MarketFactory,
    SizeFactory,
    StateFactory,
    WarehouseFactory,
)


@dataclass
class Catalog:
    english: Language
    swedish: Language
    sweden: Country
    usa: Country
    new_york: State
    size: Size  # size 23400 of published display item 12366
    unpublished_size: Size  # size 23500 of unpublished display item 12999


@pytest.fixture
def catalog(db) -> Catalog:
    english = LanguageFactory(code="en", name="English", is_default=True)
    swedish = LanguageFactory(code="sv", name="Swedish")
    stockholm, new_jersey = WarehouseFactory(name="Stockholm"), WarehouseFactory(name="New Jersey")
    sweden = CountryFactory(
        code="SE",
        language=swedish,
        market=MarketFactory(allocation_rule=AllocationRuleFactory(warehouses=[stockholm])),
    )
    usa = CountryFactory(
        code="US",
        language=english,
        market=MarketFactory(
            allocation_rule=AllocationRuleFactory(warehouses=[new_jersey, stockholm])
        ),
    )
    new_york = StateFactory(country=usa, code="NY")
    StateFactory(country=usa, code="CA")
    CountryFactory(code="NO", market=None, pricelist=None, is_ship_to=False)
    size = SizeFactory(id=23400, variant=DisplayItemFactory(id=12366).variant, name="M")
    unpublished = SizeFactory(
        id=23500, variant=DisplayItemFactory(id=12999, published=False).variant
    )
    return Catalog(english, swedish, sweden, usa, new_york, size, unpublished)
