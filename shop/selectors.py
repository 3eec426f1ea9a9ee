"""Reads of the catalog and stock."""

from collections.abc import Iterable
from dataclasses import dataclass

from django.db import connection
from django.db.models import F, IntegerField, QuerySet, Sum, Value
from django.db.models.functions import Coalesce, Greatest

from shop.models import Country, DisplayItem, Language, Size, State, Stock

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
    """What the catalog says about the item, ship-to location and language of one request."""

    item_found: bool  # the size exists, belongs to the display item, which is published
    country_id: int | None  # None: not a ship-to country
    country_has_states: bool
    country_language_id: int | None
    state_id: int | None  # None: not given, or not a state of that country
    language_id: int | None  # of the language code asked for; None: not given or not found
    default_language_id: int | None  # the store's default (first by code if none is marked)


def storefront_lookup(
    *,
    display_item_id: int | None,
    size_id: int | None,
    country_code: str,
    state_code: str | None,
    language_code: str | None,
) -> StorefrontLookup:
    """Everything a storefront request names, checked against the catalog in one query.

    The subscribe endpoints ask this on every request. As separate ORM queries (size with its
    display item, ship-to country with whether it has states, state, language, default language)
    it took five round trips, and building those queries cost more CPU than everything else in
    the request (bench/README.md, "Load"); these small tables need no more than one statement.
    """
    size, display_item = Size._meta, DisplayItem._meta
    country, state, language = Country._meta, State._meta, Language._meta
    if display_item_id is None or size_id is None or max(display_item_id, size_id) > BIGINT_MAX:
        display_item_id = size_id = None  # no such ids: the item is simply not found
    sql = f"""
        SELECT
            EXISTS (
                SELECT 1 FROM {size.db_table} s
                JOIN {display_item.db_table} d ON d.variant_id = s.variant_id
                WHERE s.id = %(size_id)s AND d.id = %(display_item_id)s AND d.published
            ),
            c.id,
            EXISTS (SELECT 1 FROM {state.db_table} st WHERE st.country_id = c.id),
            c.language_id,
            (SELECT st.id FROM {state.db_table} st
             WHERE st.country_id = c.id AND st.code = %(state_code)s ORDER BY st.id LIMIT 1),
            (SELECT l.id FROM {language.db_table} l
             WHERE l.code = %(language_code)s ORDER BY l.id LIMIT 1),
            (SELECT l.id FROM {language.db_table} l ORDER BY l.is_default DESC, l.code LIMIT 1)
        FROM (SELECT 1) AS request
        LEFT JOIN {country.db_table} c ON c.code = %(country_code)s AND c.is_ship_to
    """  # noqa: S608  (names from the models; values are parameters)
    params = {
        "display_item_id": display_item_id,
        "size_id": size_id,
        "country_code": country_code,
        "state_code": state_code,
        "language_code": language_code,
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    assert row is not None  # the LEFT JOIN from one row always gives one row
    item_found, country_id, has_states, country_language_id, state_id, language_id, default = row
    return StorefrontLookup(
        item_found=bool(item_found),
        country_id=country_id,
        country_has_states=bool(country_id is not None and has_states),
        country_language_id=country_language_id,
        state_id=state_id,
        language_id=language_id,
        default_language_id=default,
    )


def language_default() -> Language | None:
    """The store's default language; the first by code if none is marked default."""
    return Language.objects.order_by("-is_default", "code").first()
