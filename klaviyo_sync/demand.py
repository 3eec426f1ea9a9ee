"""The demand report's reads: shoppers waiting per display item, size and ship-to location
(CONTRACT §9), rolled up per product and per market, and new subscriptions and restocks per day.

It lives in the Klaviyo integration because it sets the shop's availability beside what Klaviyo
holds and was told; ``backinstock`` knows nothing of Klaviyo.

"Waiting" means a subscription that is ``pending`` or ``subscribed``: a shopper who will be
emailed when the size comes back (``failed`` ones are not, until an operator retries them).
"""

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from django.db.models import Count, F, IntegerField, Max, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.expressions import OrderBy
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from backinstock.models import BackInStockVariant, Subscription, SubscriptionStatus
from klaviyo_sync.models import Restock, SentCatalogObject
from shop.selectors import availability_for_ship_to_subquery

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


def demand_by_size(*, filters: DemandFilter, order: str = DEMAND_ORDER_DEFAULT) -> QuerySet[Any]:
    """One row per back-in-stock variant with shoppers waiting, as dicts: ``external_id``,
    ``product_name``, ``variant_name``, ``size_name``, ``display_item_id``, ``size_id``,
    ``market_name``, ``country_code``, ``country_name``, ``state_name``, ``waiting``,
    ``availability`` (units, the shop's figure now), ``klaviyo_quantity`` (the figure Klaviyo
    holds; ``None`` before the first push), ``last_restock_at`` and ``waiting_at_restock``."""
    waiting = (
        Subscription.objects.filter(filters.subscriptions(), variant_id=OuterRef("pk"))
        .values("variant_id")
        .annotate(count=Count("id"))
        .values("count")
    )
    last_restock = Restock.objects.filter(variant_id=OuterRef("pk")).order_by("-sent_at")
    variants = BackInStockVariant.objects.all()
    if filters.market_id is not None:
        variants = variants.filter(product__country__market_id=filters.market_id)
    return (
        variants.annotate(
            waiting=Coalesce(Subquery(waiting, output_field=IntegerField()), Value(0)),
            availability=availability_for_ship_to_subquery(
                size_id=OuterRef("size_id"), country_id=OuterRef("product__country_id")
            ),
            klaviyo_quantity=Subquery(
                SentCatalogObject.objects.filter(
                    external_id=OuterRef("external_id"), inventory_quantity__isnull=False
                ).values("inventory_quantity")[:1]
            ),
            last_restock_at=Subquery(last_restock.values("sent_at")[:1]),
            waiting_at_restock=Subquery(last_restock.values("waiting_subscribers")[:1]),
        )
        .filter(waiting__gt=0)
        .values(
            "external_id",
            "waiting",
            "availability",
            "klaviyo_quantity",
            "last_restock_at",
            "waiting_at_restock",
            "size_id",
            display_item_id=F("product__display_item_id"),
            product_name=F("product__display_item__variant__product__name"),
            variant_name=F("product__display_item__variant__name"),
            size_name=F("size__name"),
            market_name=Coalesce("product__country__market__name", Value("")),
            country_code=F("product__country__code"),
            country_name=F("product__country__name"),
            state_name=Coalesce("product__state__name", Value("")),
        )
        .order_by(*demand_ordering(grouping=DemandGrouping.SIZE, order=order))
    )


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
