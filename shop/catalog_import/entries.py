"""The catalog file as validated values (CONTRACT §7), and the problems found on the way there.

``validation`` turns the JSON into these entries; ``apply`` writes them. Entries hold names, not
database ids, because a name may refer to a row the same import creates.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal


@dataclass(frozen=True)
class CatalogProblem:
    """An invalid value: where it is in the file (``products[0].variants[1].id``) and what is wrong.

    ``path`` is empty when the problem is the document itself (e.g. a list instead of an object).
    """

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class CatalogInvalid(Exception):
    """The catalog has problems; nothing was imported."""

    def __init__(self, problems: Sequence[CatalogProblem]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        super().__init__(f"catalog has {count} problem{'' if count == 1 else 's'}")


@dataclass(frozen=True)
class LanguageEntry:
    code: str
    name: str
    # None when the file does not say: the language keeps its current flag.
    default: bool | None


@dataclass(frozen=True)
class WarehouseEntry:
    name: str


@dataclass(frozen=True)
class AllocationRuleEntry:
    name: str
    warehouses: tuple[str, ...]


@dataclass(frozen=True)
class PricelistEntry:
    name: str
    currency: str


@dataclass(frozen=True)
class MarketEntry:
    name: str
    allocation_rule: str


@dataclass(frozen=True)
class StateEntry:
    code: str
    name: str


@dataclass(frozen=True)
class CountryEntry:
    code: str
    name: str
    market: str | None
    pricelist: str | None
    language: str | None
    # None when the file does not list states: the country keeps the ones it has.
    states: tuple[StateEntry, ...] | None


@dataclass(frozen=True)
class TranslationEntry:
    name: str
    description: str
    uri: str


@dataclass(frozen=True)
class WarehouseStockEntry:
    warehouse: str
    physical: int
    allocated: int


@dataclass(frozen=True)
class SizeEntry:
    id: int
    name: str
    sku: str
    ean: str
    stock: tuple[WarehouseStockEntry, ...]


@dataclass(frozen=True)
class VariantEntry:
    """A variant and its display item, which the file describes as one object."""

    id: int
    name: str
    display_item_id: int
    uri: str
    published: bool
    description: str
    images: tuple[str, ...]
    translations: dict[str, TranslationEntry]
    prices: dict[str, Decimal]
    sizes: tuple[SizeEntry, ...]


@dataclass(frozen=True)
class ProductEntry:
    id: int
    number: str
    name: str
    brand: str
    collection: str
    product_type: str
    variants: tuple[VariantEntry, ...]


@dataclass
class Catalog:
    """A valid catalog file; sections the file leaves out are empty."""

    languages: list[LanguageEntry] = field(default_factory=list)
    warehouses: list[WarehouseEntry] = field(default_factory=list)
    allocation_rules: list[AllocationRuleEntry] = field(default_factory=list)
    pricelists: list[PricelistEntry] = field(default_factory=list)
    markets: list[MarketEntry] = field(default_factory=list)
    countries: list[CountryEntry] = field(default_factory=list)
    products: list[ProductEntry] = field(default_factory=list)
