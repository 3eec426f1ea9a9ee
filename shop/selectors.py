"""Reads of the catalog and stock."""

from collections.abc import Iterable
from dataclasses import dataclass

from django.db import connection
from django.db.models import F, IntegerField, QuerySet, Sum, Value
from django.db.models.functions import Coalesce, Greatest

from shop.models import (
    Country,
    DisplayItem,
    Language,
    Price,
    Size,
    State,
    Stock,
    location_code_canonical,
)

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


BIGINT_MAX = 2**63 - 1


@dataclass(frozen=True)
class StorefrontLookup:
    """What the catalog says about the item and ship-to location of one request."""

    item_found: bool  # the size exists, belongs to the display item, which is published
    item_priced: bool  # the display item has a price in the ship-to country's pricelist
    country_id: int | None  # None: not a ship-to country
    country_has_states: bool
    country_language_id: int | None
    state_id: int | None  # None: not given, or not a state of that country


def storefront_lookup(
    *,
    display_item_id: int | None,
    size_id: int | None,
    country_code: str,
    state_code: str | None,
) -> StorefrontLookup:
    """The item and ship-to location a storefront request names, checked in one query.

    The subscribe endpoints ask this on every request. As separate ORM queries (size with its
    display item, ship-to country with whether it has states, state, language, default language)
    it took five round trips, and building those queries cost more CPU than everything else in
    the request (bench/README.md, "Load"); these small tables need no more than one statement.
    The language is not in it (``store_languages``), so that the answer depends on the item and
    the ship-to location alone and a process keeps fewer of them (``backinstock.services``).
    """
    size, display_item, price = Size._meta, DisplayItem._meta, Price._meta
    country, state = Country._meta, State._meta
    if display_item_id is None or size_id is None or max(display_item_id, size_id) > BIGINT_MAX:
        display_item_id = size_id = None  # no such ids: the item is simply not found
    sql = f"""
        SELECT
            EXISTS (
                SELECT 1 FROM {size.db_table} s
                JOIN {display_item.db_table} d ON d.variant_id = s.variant_id
                WHERE s.id = %(size_id)s AND d.id = %(display_item_id)s AND d.published
            ),
            EXISTS (
                SELECT 1 FROM {price.db_table} p
                WHERE p.display_item_id = %(display_item_id)s AND p.pricelist_id = c.pricelist_id
            ),
            c.id,
            EXISTS (SELECT 1 FROM {state.db_table} st WHERE st.country_id = c.id),
            c.language_id,
            (SELECT st.id FROM {state.db_table} st
             WHERE st.country_id = c.id AND st.code = %(state_code)s ORDER BY st.id LIMIT 1)
        FROM (SELECT 1) AS request
        LEFT JOIN {country.db_table} c ON c.code = %(country_code)s AND c.is_ship_to
    """  # noqa: S608  (names from the models; values are parameters)
    params = {
        "display_item_id": display_item_id,
        "size_id": size_id,
        "country_code": location_code_canonical(country_code),
        "state_code": location_code_canonical(state_code) if state_code else state_code,
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    assert row is not None  # the LEFT JOIN from one row always gives one row
    (
        item_found,
        item_priced,
        country_id,
        has_states,
        country_language_id,
        state_id,
    ) = row
    return StorefrontLookup(
        item_found=bool(item_found),
        item_priced=bool(item_priced),
        country_id=country_id,
        country_has_states=bool(country_id is not None and has_states),
        country_language_id=country_language_id,
        state_id=state_id,
    )


@dataclass(frozen=True)
class StoreLanguages:
    """The store's languages, as a storefront request names them."""

    ids_by_code: tuple[tuple[str, int], ...]  # every language's (code, id), the default first
    default_id: int | None  # the store's default (first by code if none is marked); None: none

    def id_for(self, code: str) -> int | None:
        """The id of the language with exactly this code; None if there is none."""
        return next((id_ for known, id_ in self.ids_by_code if known == code), None)


# The store's default language: the one marked default, else the first by code.
_DEFAULT_LANGUAGE_FIRST = ("-is_default", "code")


def store_languages() -> StoreLanguages:
    """Every language of the store, and its default, in one query."""
    rows = tuple(Language.objects.order_by(*_DEFAULT_LANGUAGE_FIRST).values_list("code", "id"))
    return StoreLanguages(ids_by_code=rows, default_id=rows[0][1] if rows else None)


def language_default() -> Language | None:
    """The store's default language; the first by code if none is marked default."""
    return Language.objects.order_by(*_DEFAULT_LANGUAGE_FIRST).first()
