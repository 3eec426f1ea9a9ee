"""Reads for the Klaviyo integration: its settings, and domain rows turned into payload data."""

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.db import connection

from backinstock.models import BackInStockVariant
from klaviyo_sync.accounts import current_account
from klaviyo_sync.client import url_without_credentials
from klaviyo_sync.models import DISPLAY_URI_PLACEHOLDER, CatalogSyncRun, IntegrationSettings
from klaviyo_sync.payloads import (
    BackInStockItemData,
    BackInStockVariantData,
    CatalogItemData,
    LocalizedText,
    inventory_quantity_for,
)
from shop.models import DisplayItem, DisplayItemTranslation, Price
from shop.selectors import availability_by_size_for_ship_to, language_default

CATALOG_CHUNK_SIZE = 1000


def integration_settings_get() -> IntegrationSettings:
    """The settings record, created with defaults on first use."""
    settings_record, _ = IntegrationSettings.objects.get_or_create(
        pk=IntegrationSettings.SINGLETON_PK
    )
    return settings_record


def back_in_stock_enabled() -> bool:
    """Whether the subscribe endpoints accept subscriptions (CONTRACT §3, §6).

    Asked on every subscribe request, so it is one plain statement: building the equivalent
    ``filter(...).exists()`` costs several times the round trip (bench/README.md, "Load").
    The switch is read from the database every call; the subscribe path keeps the answer for
    ``STOREFRONT_CACHE_SECONDS`` (``backinstock.services.back_in_stock_is_enabled``).
    """
    meta = IntegrationSettings._meta
    column = meta.get_field("back_in_stock_enabled").column
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {column} FROM {meta.db_table} WHERE {meta.pk.column} = %s",  # noqa: S608
            [IntegrationSettings.SINGLETON_PK],
        )
        row = cursor.fetchone()
    return bool(row and row[0])


def catalog_sync_run_latest(*, full: bool | None = None) -> CatalogSyncRun | None:
    runs = CatalogSyncRun.objects.all()
    if full is not None:
        runs = runs.filter(full=full)
    return runs.order_by("-started_at", "-id").first()


def product_url(*, template: str, display_uri: str) -> str:
    """The template with the display item's URI as one percent-encoded path segment
    (``x"><script>`` becomes ``x%22%3E%3Cscript%3E``; a ``/`` in it is ``%2F``)."""
    return template.replace(DISPLAY_URI_PLACEHOLDER, quote(display_uri, safe=""))


def _default_language_code() -> str:
    language = language_default()
    return language.code if language else "en"


@dataclass(frozen=True)
class _Translation:
    name: str
    description: str
    uri: str


def catalog_item_data_for(
    *, display_item_ids: Iterable[int] | None, settings_record: IntegrationSettings
) -> Iterator[CatalogItemData]:
    """Payload data of these display items (all when None), read in chunks of 1,000.

    Memory stays flat however large the catalog: one chunk of rows at a time, with their
    translations and prices (three queries per chunk). Rows are read as tuples and the
    translations and prices grouped by hand: ``prefetch_related`` costs a queryset clone per
    display item, most of the time of a 100,000-item sync.
    """
    default_language = _default_language_code()
    rows = DisplayItem.objects.order_by("id").values_list(
        "id",
        "published",
        "uri",
        "description",
        "images",
        "variant__name",
        "variant__product__name",
        "variant__product__brand",
        "variant__product__collection",
        "variant__product__product_type",
    )
    if display_item_ids is not None:
        rows = rows.filter(id__in=list(display_item_ids))
    last_id = None
    while True:
        chunk_rows = rows if last_id is None else rows.filter(id__gt=last_id)
        chunk = list(chunk_rows[:CATALOG_CHUNK_SIZE])
        if not chunk:
            return
        ids = [row[0] for row in chunk]
        translations: dict[int, dict[str, _Translation]] = defaultdict(dict)
        for item_id, code, name, description, uri in (
            DisplayItemTranslation.objects.filter(display_item_id__in=ids)
            .order_by("display_item_id", "language__code")
            .values_list("display_item_id", "language__code", "name", "description", "uri")
        ):
            translations[item_id][code] = _Translation(name, description, uri)
        prices: dict[int, dict[str, Decimal]] = defaultdict(dict)
        # By pricelist name: when two pricelists share a currency, the first name's price wins.
        for item_id, currency, amount in (
            Price.objects.filter(display_item_id__in=ids)
            .order_by("display_item_id", "pricelist__name")
            .values_list("display_item_id", "pricelist__currency", "amount")
        ):
            prices[item_id].setdefault(currency, amount)
        for row in chunk:
            yield _catalog_item_data(
                _ItemRow(*row),
                translations.get(row[0], {}),
                prices.get(row[0], {}),
                settings_record,
                default_language,
            )
        last_id = chunk[-1][0]


@dataclass(frozen=True)
class _ItemRow:
    """One display item with its variant's and product's fields, as ``values_list`` reads it."""

    id: int
    published: bool
    uri: str
    description: str
    images: Any
    variant_name: str
    product_name: str
    brand: str
    collection: str
    product_type: str


def _catalog_item_data(
    item: _ItemRow,
    translations: dict[str, _Translation],
    prices_by_currency: dict[str, Decimal],
    settings_record: IntegrationSettings,
    default_language: str,
) -> CatalogItemData:
    template = settings_record.product_url_template

    def localized(default: str, attribute: str) -> LocalizedText:
        texts = {default_language: default}
        texts.update(
            {
                code: getattr(t, attribute)
                for code, t in translations.items()
                if getattr(t, attribute)
            }
        )
        return LocalizedText(default=default, by_language=texts)

    uri_by_language = {default_language: item.uri}
    uri_by_language.update({code: t.uri for code, t in translations.items() if t.uri})
    return CatalogItemData(
        display_item_id=item.id,
        published=item.published,
        product_name=localized(item.product_name, "name"),
        variant_name=LocalizedText(default=item.variant_name, by_language={}),
        description=localized(item.description, "description"),
        url=LocalizedText(
            default=product_url(template=template, display_uri=item.uri),
            by_language={
                code: product_url(template=template, display_uri=uri)
                for code, uri in uri_by_language.items()
            },
        ),
        images=list(item.images or []),
        price=prices_by_currency.get(settings_record.base_currency),
        prices_by_currency=dict(prices_by_currency),
        brand=item.brand,
        collection=item.collection,
        product_type=item.product_type,
    )


def display_item_is_sold(*, published: bool, price: Decimal | None) -> bool:
    """Whether a display item can be bought for a ship-to location: published, and priced in
    the ship-to country's pricelist (CONTRACT §3: an item without that price is not sold there).
    """
    return published and price is not None


def back_in_stock_variants_get(*, external_ids: Iterable[str]) -> list[BackInStockVariant]:
    return list(
        BackInStockVariant.objects.select_related(
            "size",
            "product__display_item__variant__product",
            "product__country__pricelist",
        ).filter(external_id__in=list(external_ids))
    )


def back_in_stock_payload_data(
    *, variants: list[BackInStockVariant], settings_record: IntegrationSettings
) -> list[tuple[BackInStockItemData, BackInStockVariantData]]:
    """Item and variant payload data for back-in-stock variants, with current stock figures."""
    pricelist_ids = {v.product.country.pricelist_id for v in variants}
    display_item_ids = {v.product.display_item_id for v in variants}
    prices: dict[tuple[int, int | None], Decimal] = {
        (p.display_item_id, p.pricelist_id): p.amount
        for p in Price.objects.filter(
            display_item_id__in=display_item_ids, pricelist_id__in=pricelist_ids
        )
    }
    figures: dict[tuple[int, str], int] = {}
    by_country: dict[str, set[int]] = {}
    for variant in variants:
        by_country.setdefault(variant.product.country.code, set()).add(variant.size_id)
    for country_code, size_ids in by_country.items():
        for size_id, available in availability_by_size_for_ship_to(
            size_ids=size_ids, country_code=country_code
        ).items():
            figures[(size_id, country_code)] = available

    result = []
    for variant in variants:
        product = variant.product
        display_item = product.display_item
        price = prices.get((display_item.id, product.country.pricelist_id))
        url = product_url(
            template=settings_record.product_url_template, display_uri=display_item.uri
        )
        name = display_item.variant.product.name
        images = list(display_item.images or [])
        sold = display_item_is_sold(published=display_item.published, price=price)
        item = BackInStockItemData(
            external_id=product.external_id,
            product_name=name,
            description=display_item.description,
            url=url,
            images=images,
            price=price,
            sold=sold,
        )
        # While it is not sold there, its variants hold 0: no rise, no email, no restock.
        availability = figures.get((variant.size_id, product.country.code), 0) if sold else 0
        result.append(
            (
                item,
                BackInStockVariantData(
                    external_id=variant.external_id,
                    item_external_id=product.external_id,
                    product_name=name,
                    size_name=variant.size.name,
                    sku=variant.size.sku,
                    description=display_item.description,
                    url=url,
                    images=images,
                    price=price,
                    inventory_quantity=inventory_quantity_for(
                        availability=availability,
                        minimum_stock_level=settings_record.minimum_stock_level,
                    ),
                ),
            )
        )
    return result


def integration_status() -> dict[str, object]:
    """The integration as ``manage.py klaviyo status`` prints it (CONTRACT §6).

    ``klaviyo.fullCatalogSync``: when the account configured now (``KLAVIYO_API_URL`` and
    ``KLAVIYO_API_KEY``, told apart by ``klaviyo_sync.accounts.current_account``) last completed
    a full catalog sync, or ``"never"``: another account's syncs gave this one nothing.
    """
    record = integration_settings_get()
    latest = catalog_sync_run_latest()
    full_runs = CatalogSyncRun.objects.filter(state="completed", full=True).order_by("-finished_at")
    completed = full_runs.values_list("finished_at", flat=True).first()
    account_completed = (
        full_runs.filter(account=current_account()).values_list("finished_at", flat=True).first()
    )
    return {
        "catalogSync": {
            "enabled": record.catalog_sync_enabled,
            "state": record.catalog_sync_state,
            "completedAt": completed.isoformat() if completed else None,
            "firstCompletedAt": (
                record.first_full_sync_completed_at.isoformat()
                if record.first_full_sync_completed_at
                else None
            ),
            "lastRun": None
            if latest is None
            else {
                "full": latest.full,
                "state": latest.state,
                "total": latest.total,
                "done": latest.done,
                "unchanged": latest.unchanged,
                "failed": latest.failed,
                "notSent": latest.not_sent,
                "missingRepaired": latest.missing_repaired,
                "trigger": latest.trigger,
                "calls": latest.calls,
                "startedAt": latest.started_at.isoformat(),
                "finishedAt": latest.finished_at.isoformat() if latest.finished_at else None,
                "error": latest.error or None,
                "failures": [
                    {"externalId": f.external_id, "detail": f.detail}
                    for f in latest.failures.all()[:20]
                ],
            },
        },
        "backInStock": {
            "enabled": record.back_in_stock_enabled,
            "minimumStockLevel": record.minimum_stock_level,
        },
        "productUrlTemplate": record.product_url_template,
        "baseCurrency": record.base_currency,
        "klaviyo": {
            "apiKey": "present" if settings.KLAVIYO_API_KEY else "absent",
            "apiUrl": url_without_credentials(settings.KLAVIYO_API_URL),
            "revision": settings.KLAVIYO_REVISION,
            "fullCatalogSync": account_completed.isoformat() if account_completed else "never",
        },
    }
