"""The demand report's reads: shoppers waiting per display item, size and ship-to location
(CONTRACT §9), rolled up per product and per market, and new subscriptions and restocks per day.

It lives in the Klaviyo integration because it sets the shop's availability beside what Klaviyo
holds and was told; ``backinstock`` knows nothing of Klaviyo.

"Waiting" means a subscription that is ``pending`` or ``subscribed``: a shopper who will be
emailed when the size comes back (``failed`` ones are not, until an operator retries them).
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.db import connection
from django.db.models import Count, F, Max, Q, QuerySet, Value
from django.db.models.expressions import OrderBy
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from backinstock.models import (
    BackInStockProduct,
    BackInStockVariant,
    Subscription,
    SubscriptionStatus,
)
from klaviyo_sync.accounts import current_account
from klaviyo_sync.models import CatalogObjectKind, Restock, SentCatalogObject

WAITING = (SubscriptionStatus.PENDING, SubscriptionStatus.SUBSCRIBED)
# The chart's span when the report is not limited to dates.
CHART_DAYS_DEFAULT = 30


class DemandGrouping:
    SIZE = "size"
    PRODUCT = "product"
    MARKET = "market"
    ALL = (SIZE, PRODUCT, MARKET)


@dataclass(frozen=True)
class DemandFilter:
    """Which subscriptions count: of one market (``None``: all) and created between two days
    (both included; ``None``: unbounded)."""

    market_id: int | None = None
    since: date | None = None
    until: date | None = None

    def subscriptions(self, prefix: str = "") -> Q:
        """The condition on subscriptions reached by ``prefix`` (``"subscriptions__"``)."""
        condition = Q(**{f"{prefix}status__in": WAITING})
        if self.since is not None:
            condition &= Q(**{f"{prefix}created_at__date__gte": self.since})
        if self.until is not None:
            condition &= Q(**{f"{prefix}created_at__date__lte": self.until})
        return condition


# The sortable columns of each grouping: the name in ``?o=`` and the field it orders by.
DEMAND_ORDERINGS: dict[str, dict[str, str]] = {
    DemandGrouping.SIZE: {
        "product": "product_name",
        "size": "size_name",
        "market": "market_name",
        "ship_to": "country_code",
        "waiting": "waiting",
        "availability": "availability",
        "klaviyo": "klaviyo_quantity",
        "restock": "last_restock_at",
    },
    DemandGrouping.PRODUCT: {
        "product": "product_name",
        "waiting": "waiting",
        "sizes": "sizes",
        "restock": "last_restock_at",
    },
    DemandGrouping.MARKET: {
        "market": "market_name",
        "waiting": "waiting",
        "sizes": "sizes",
        "restock": "last_restock_at",
    },
}
DEMAND_ORDER_DEFAULT = "-waiting"


def demand_ordering(*, grouping: str, order: str) -> list[OrderBy]:
    """The ORDER BY for ``?o=`` (``waiting``, ``-waiting``, ...); an unknown one gives the
    default, most waiting first. Ties fall back on the row's name so pages are stable."""
    fields = DEMAND_ORDERINGS[grouping]
    name = order.removeprefix("-")
    if name not in fields:
        return demand_ordering(grouping=grouping, order=DEMAND_ORDER_DEFAULT)
    field = fields[name]
    tie = "external_id" if grouping == DemandGrouping.SIZE else next(iter(fields.values()))
    first = (
        F(field).desc(nulls_last=True) if order.startswith("-") else F(field).asc(nulls_last=True)
    )
    return [first, F(tie).asc()]


# Written in SQL because the ORM, asked for a grouped count beside per-row subqueries, groups
# by the subqueries too and so runs them for every subscription: 4 s instead of a tenth of that
# at 100,000 subscriptions (bench/demand_report.py). Here the waiting shoppers are counted per
# variant in one pass, and the other figures are joined in as sets, restricted to the variants
# and sizes with someone waiting, so sorting by any column costs the same.
_SIZE_SQL = """
WITH waiting AS (
    SELECT s.variant_id, COUNT(*) AS waiting
    FROM {subscription} s
    WHERE s.status IN (%(pending)s, %(subscribed)s) {subscription_conditions}
    GROUP BY s.variant_id
), located AS (
    SELECT v.id AS variant_id, v.external_id, v.size_id, w.waiting, p.display_item_id,
        p.country_id, p.state_id, c.market_id, c.is_ship_to
    FROM waiting w
    JOIN {variant} v ON v.id = w.variant_id
    JOIN {product} p ON p.id = v.product_id
    JOIN {country} c ON c.id = p.country_id
    WHERE 1 = 1 {market_condition}
), available AS (
    SELECT stock.size_id, sm.id AS market_id,
        SUM(CASE WHEN stock.physical > stock.allocated
            THEN stock.physical - stock.allocated ELSE 0 END) AS availability
    FROM {stock} stock
    JOIN {rule_warehouse} rw ON rw.warehouse_id = stock.warehouse_id
    JOIN {market} sm ON sm.allocation_rule_id = rw.allocation_rule_id
    WHERE stock.size_id IN (SELECT size_id FROM located)
    GROUP BY stock.size_id, sm.id
), restocks AS (
    SELECT r.variant_id, r.sent_at, r.waiting_subscribers,
        ROW_NUMBER() OVER (PARTITION BY r.variant_id ORDER BY r.sent_at DESC) AS recency
    FROM {restock} r
    WHERE r.variant_id IN (SELECT variant_id FROM located)
), report AS (
    SELECT l.external_id, l.size_id, l.waiting, l.display_item_id,
        prod.name AS product_name, var.name AS variant_name, sz.name AS size_name,
        COALESCE(m.name, '') AS market_name, c.code AS country_code, c.name AS country_name,
        COALESCE(st.name, '') AS state_name,
        CASE WHEN l.is_ship_to THEN COALESCE(a.availability, 0) ELSE 0 END AS availability,
        sent.inventory_quantity AS klaviyo_quantity,
        lr.sent_at AS last_restock_at, lr.waiting_subscribers AS waiting_at_restock
    FROM located l
    JOIN {display_item} di ON di.id = l.display_item_id
    JOIN {shop_variant} var ON var.id = di.variant_id
    JOIN {shop_product} prod ON prod.id = var.product_id
    JOIN {size} sz ON sz.id = l.size_id
    JOIN {country} c ON c.id = l.country_id
    LEFT JOIN {market} m ON m.id = l.market_id
    LEFT JOIN {state} st ON st.id = l.state_id
    LEFT JOIN available a ON a.size_id = l.size_id AND a.market_id = l.market_id
    LEFT JOIN {sent} sent
        ON sent.account = %(account)s AND sent.kind = %(variant_kind)s
        AND sent.external_id = l.external_id
    LEFT JOIN restocks lr ON lr.variant_id = l.variant_id AND lr.recency = 1
)
"""
# Portable between PostgreSQL and the demo's SQLite (3.30 or later: NULLS LAST).
_SIZE_PAGE_SQL = """
SELECT * FROM report
ORDER BY {order} {direction} NULLS LAST, external_id
LIMIT %(limit)s OFFSET %(offset)s
"""
# "No limit" that both databases take as a number.
_NO_LIMIT = 2**62


def _day_start(day: date) -> Any:
    """Midnight of ``day`` in the shop's time zone, as the database compares datetimes."""
    moment = timezone.make_aware(datetime.combine(day, time.min))
    return connection.ops.adapt_datetimefield_value(moment)


def _as_datetime(value: Any) -> datetime | None:
    """A datetime column read by a raw query: SQLite answers naive UTC (or text)."""
    if value is None:
        return None
    parsed = value if isinstance(value, datetime) else parse_datetime(str(value))
    if parsed is not None and timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, UTC)
    return parsed


def _tables() -> dict[str, str]:
    from shop.models import (
        AllocationRuleWarehouse,
        Country,
        DisplayItem,
        Market,
        Product,
        Size,
        State,
        Stock,
        Variant,
    )

    models = {
        "subscription": Subscription,
        "variant": BackInStockVariant,
        "product": BackInStockProduct,
        "display_item": DisplayItem,
        "shop_variant": Variant,
        "shop_product": Product,
        "size": Size,
        "country": Country,
        "market": Market,
        "state": State,
        "stock": Stock,
        "rule_warehouse": AllocationRuleWarehouse,
        "sent": SentCatalogObject,
        "restock": Restock,
    }
    return {name: connection.ops.quote_name(model._meta.db_table) for name, model in models.items()}


class DemandBySize:
    """The per-size report, sliceable and countable like a queryset (for ``Paginator``) and
    iterable over every row (for the CSV export)."""

    CHUNK = 2000

    def __init__(self, *, filters: DemandFilter, order: str) -> None:
        name = order.removeprefix("-")
        columns = DEMAND_ORDERINGS[DemandGrouping.SIZE]  # the output columns of ``rows``
        if name not in columns:
            name, order = "waiting", DEMAND_ORDER_DEFAULT
        self._order = columns[name]
        self._direction = "DESC" if order.startswith("-") else "ASC"
        self._params: dict[str, Any] = {
            "pending": SubscriptionStatus.PENDING.value,
            "subscribed": SubscriptionStatus.SUBSCRIBED.value,
            "variant_kind": CatalogObjectKind.VARIANT.value,
            "account": current_account(),  # what the Klaviyo configured now holds
        }
        conditions = []
        if filters.since is not None:
            conditions.append("AND s.created_at >= %(since)s")
            self._params["since"] = _day_start(filters.since)
        if filters.until is not None:
            conditions.append("AND s.created_at < %(until)s")
            self._params["until"] = _day_start(filters.until + timedelta(days=1))
        self._sql = _SIZE_SQL.format(
            subscription_conditions=" ".join(conditions),
            market_condition=(
                "AND c.market_id = %(market)s" if filters.market_id is not None else ""
            ),
            **_tables(),
        )
        if filters.market_id is not None:
            self._params["market"] = filters.market_id
        self._count: int | None = None

    def count(self) -> int:
        if self._count is None:
            # Only table names and fixed conditions are in the text; values are parameters.
            sql = self._sql + "SELECT COUNT(*) FROM located"  # noqa: S608
            with connection.cursor() as cursor:
                cursor.execute(sql, self._params)
                self._count = int(cursor.fetchone()[0])
        return self._count

    def __len__(self) -> int:
        return self.count()

    def _rows(self, *, offset: int, limit: int | None) -> Iterator[dict[str, Any]]:
        """Rows from ``offset`` on, at most ``limit`` (``None``: all), read in chunks."""
        # Table names from the models and a sort column from DEMAND_ORDERINGS; values are
        # parameters.
        sql = self._sql + _SIZE_PAGE_SQL.format(order=self._order, direction=self._direction)
        limit = _NO_LIMIT if limit is None else limit
        with connection.cursor() as cursor:
            cursor.execute(sql, {**self._params, "limit": limit, "offset": offset})
            names = [column[0] for column in cursor.description]
            while chunk := cursor.fetchmany(self.CHUNK):
                for values in chunk:
                    row = dict(zip(names, values, strict=True))
                    row["last_restock_at"] = _as_datetime(row["last_restock_at"])
                    yield row

    def __getitem__(self, key: slice) -> list[dict[str, Any]]:
        start = key.start or 0
        limit = None if key.stop is None else max(key.stop - start, 0)
        return list(self._rows(offset=start, limit=limit))

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self._rows(offset=0, limit=None)


def demand_by_size(*, filters: DemandFilter, order: str = DEMAND_ORDER_DEFAULT) -> DemandBySize:
    """One row per back-in-stock variant with shoppers waiting, as dicts: ``external_id``,
    ``product_name``, ``variant_name``, ``size_name``, ``display_item_id``, ``size_id``,
    ``market_name``, ``country_code``, ``country_name``, ``state_name``, ``waiting``,
    ``availability`` (units free to allocate for the location now), ``klaviyo_quantity`` (the
    figure Klaviyo holds; ``None`` before the first push), ``last_restock_at`` and
    ``waiting_at_restock``. Sorted by ``order`` (``DEMAND_ORDERINGS``), then variant id."""
    return DemandBySize(filters=filters, order=order)


def demand_rolled_up(
    *, grouping: str, filters: DemandFilter, order: str = DEMAND_ORDER_DEFAULT
) -> QuerySet[Any]:
    """Waiting shoppers per product (``product_name``) or per market (``market_name``), as
    dicts with ``waiting``, ``sizes`` (back-in-stock variants with someone waiting) and
    ``last_restock_at``."""
    key = {
        DemandGrouping.PRODUCT: (
            "product_name",
            "variant__product__display_item__variant__product",
        ),
        DemandGrouping.MARKET: ("market_name", "variant__product__country__market"),
    }[grouping]
    subscriptions = Subscription.objects.filter(filters.subscriptions())
    if filters.market_id is not None:
        subscriptions = subscriptions.filter(variant__product__country__market_id=filters.market_id)
    return (
        subscriptions.values(**{key[0]: Coalesce(f"{key[1]}__name", Value(""))})
        .annotate(
            waiting=Count("id", distinct=True),
            sizes=Count("variant_id", distinct=True),
            last_restock_at=Max("variant__restocks__sent_at"),
        )
        .order_by(*demand_ordering(grouping=grouping, order=order))
    )


@dataclass(frozen=True)
class DemandDay:
    day: date
    subscriptions: int
    restocks: int


def demand_per_day(*, filters: DemandFilter, today: date | None = None) -> list[DemandDay]:
    """New subscriptions (any state now) and restocks told to Klaviyo per day, every day of the
    filter's span (the last ``CHART_DAYS_DEFAULT`` days when it has none), zeros included."""
    until = filters.until or today or timezone.localdate()
    since = filters.since or until - timedelta(days=CHART_DAYS_DEFAULT - 1)
    subscriptions = Subscription.objects.filter(
        created_at__date__gte=since, created_at__date__lte=until
    )
    restocks = Restock.objects.filter(sent_at__date__gte=since, sent_at__date__lte=until)
    if filters.market_id is not None:
        subscriptions = subscriptions.filter(variant__product__country__market_id=filters.market_id)
        restocks = restocks.filter(variant__product__country__market_id=filters.market_id)
    created = dict(
        subscriptions.annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(count=Count("id"))
        .values_list("day", "count")
    )
    restocked = dict(
        restocks.annotate(day=TruncDate("sent_at"))
        .values("day")
        .annotate(count=Count("id"))
        .values_list("day", "count")
    )
    days = (since + timedelta(days=offset) for offset in range((until - since).days + 1))
    return [DemandDay(day, created.get(day, 0), restocked.get(day, 0)) for day in days]
