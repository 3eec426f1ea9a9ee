"""Shoppers waiting for sizes in two markets: the demand report's test data."""

from datetime import timedelta

from django.utils import timezone

from klaviyo_sync.accounts import current_account
from klaviyo_sync.models import CatalogObjectKind, Restock, SentCatalogObject
from tests.factories import (
    AllocationRuleFactory,
    BackInStockProductFactory,
    BackInStockVariantFactory,
    CountryFactory,
    DisplayItemFactory,
    SizeFactory,
    StockFactory,
    SubscriptionFactory,
    WarehouseFactory,
)


def _variant(*, country, display_item_id, size_id, size_name, product_name):
    display_item = DisplayItemFactory(id=display_item_id, variant__product__name=product_name)
    size = SizeFactory(id=size_id, name=size_name, variant=display_item.variant)
    product = BackInStockProductFactory(display_item=display_item, country=country)
    return BackInStockVariantFactory(product=product, size=size)


def demand_create() -> dict:
    """Hoodie M in Sweden: 3 waiting, 1 failed, 43 free to allocate, Klaviyo holds 0, restocked
    once when 2 were waiting. Tee S in the US: 1 waiting."""
    stockholm = WarehouseFactory(name="Stockholm")
    sweden = CountryFactory(
        code="SE",
        name="Sweden",
        market__name="Nordics",
        market__allocation_rule=AllocationRuleFactory(warehouses=[stockholm]),
    )
    usa = CountryFactory(code="US", name="United States", market__name="North America")
    hoodie = _variant(
        country=sweden, display_item_id=12366, size_id=23400, size_name="M", product_name="Hoodie"
    )
    tee = _variant(
        country=usa, display_item_id=12400, size_id=23500, size_name="S", product_name="Tee"
    )
    StockFactory(size=hoodie.size, warehouse=stockholm, physical=50, allocated=7)
    for n in range(3):
        SubscriptionFactory(variant=hoodie, email=f"waiting{n}@example.com")
    SubscriptionFactory(variant=hoodie, email="failed@example.com", status="failed")
    SubscriptionFactory(variant=tee, email="ann@example.com")
    SentCatalogObject.objects.create(
        account=current_account(),
        owner="back_in_stock",
        kind=CatalogObjectKind.VARIANT,
        external_id=hoodie.external_id,
        inventory_quantity=0,
    )
    Restock.objects.create(
        variant=hoodie,
        previous_quantity=0,
        quantity=12,
        waiting_subscribers=2,
        sent_at=timezone.now() - timedelta(days=2),
    )
    return {"hoodie": hoodie, "tee": tee, "nordics": sweden.market}
