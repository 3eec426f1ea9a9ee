"""Reads of the catalog and stock."""

from collections.abc import Iterable

from django.db.models import Exists, F, IntegerField, OuterRef, QuerySet, Sum, Value
from django.db.models.functions import Coalesce, Greatest

from shop.models import Country, Language, Size, State, Stock

_FREE_TO_ALLOCATE = Greatest(F("physical") - F("allocated"), Value(0), output_field=IntegerField())


def _stock_serving_country(*, country_code: str) -> QuerySet[Stock]:
    """Stock rows in the warehouses of the country's market's allocation rule."""
    return Stock.objects.filter(
        warehouse__allocation_rules__markets__countries__code=country_code,
        warehouse__allocation_rules__markets__countries__is_ship_to=True,
    )


def availability_for_ship_to(*, size_id: int, country_code: str) -> int:
    """How many of this size can ship to this country (CONTRACT §8).

    The sum of free-to-allocate, max(physical - allocated, 0), over the warehouses of the allocation
    rule of the country's market. A state does not change it: markets are per country. A country
    that is not a ship-to country gets 0.
    """
    total = (
        _stock_serving_country(country_code=country_code)
        .filter(size_id=size_id)
        .aggregate(total=Coalesce(Sum(_FREE_TO_ALLOCATE), Value(0)))["total"]
    )
    return int(total)


def availability_by_size_for_ship_to(
    *, size_ids: Iterable[int], country_code: str
) -> dict[int, int]:
    """``availability_for_ship_to`` for many sizes in one query; every asked size has an entry."""
    wanted = set(size_ids)
    rows = (
        _stock_serving_country(country_code=country_code)
        .filter(size_id__in=wanted)
        .values("size_id")
        .annotate(total=Sum(_FREE_TO_ALLOCATE))
    )
    figures = dict.fromkeys(wanted, 0)
    figures.update({row["size_id"]: int(row["total"] or 0) for row in rows})
    return figures


def size_get_for_item(*, display_item_id: int, size_id: int) -> Size | None:
    """The size of a published display item, with its variant, product and display item."""
    return (
        Size.objects.select_related("variant__product", "variant__display_item")
        .filter(
            id=size_id,
            variant__display_item__id=display_item_id,
            variant__display_item__published=True,
        )
        .first()
    )


def ship_to_country_get(*, code: str) -> Country | None:
    """A ship-to country with its market, pricelist and language, and whether it has states."""
    return (
        Country.objects.select_related("pricelist", "language")
        .annotate(has_states=Exists(State.objects.filter(country_id=OuterRef("pk"))))
        .filter(code=code, is_ship_to=True)
        .first()
    )


def state_get(*, country: Country, code: str) -> State | None:
    return State.objects.filter(country=country, code=code).first()


def language_get(*, code: str) -> Language | None:
    return Language.objects.filter(code=code).first()


def language_default() -> Language | None:
    """The store's default language; the first by code if none is marked default."""
    return Language.objects.order_by("-is_default", "code").first()


def stock_for_sizes(*, size_ids: Iterable[int]) -> QuerySet[Stock]:
    return Stock.objects.filter(size_id__in=set(size_ids))


def size_filter_by_skus(*, skus: Iterable[str]) -> QuerySet[Size]:
    return Size.objects.filter(sku__in=set(skus))
