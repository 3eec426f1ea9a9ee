"""factory-boy factories for the catalog and back-in-stock records."""

from decimal import Decimal

import factory

from backinstock.models import BackInStockProduct, BackInStockVariant, Subscription
from shop.models import (
    AllocationRule,
    AllocationRuleWarehouse,
    Country,
    DisplayItem,
    Language,
    Market,
    Price,
    Pricelist,
    Product,
    Size,
    State,
    Stock,
    Variant,
    Warehouse,
)


class LanguageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Language
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"l{n}")
    name = factory.LazyAttribute(lambda o: f"Language {o.code}")


class WarehouseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Warehouse
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Warehouse {n}")


class AllocationRuleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AllocationRule
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Rule {n}")

    @factory.post_generation
    def warehouses(self, create, extracted, **kwargs):
        for position, warehouse in enumerate(extracted or []):
            AllocationRuleWarehouse.objects.create(
                allocation_rule=self, warehouse=warehouse, position=position
            )


class PricelistFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Pricelist

    name = factory.Sequence(lambda n: f"Pricelist {n}")
    currency = "SEK"


class MarketFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Market

    name = factory.Sequence(lambda n: f"Market {n}")
    allocation_rule = factory.SubFactory(AllocationRuleFactory)


class CountryFactory(factory.django.DjangoModelFactory):
    """A ship-to country by default."""

    class Meta:
        model = Country
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"{chr(65 + n // 26 % 26)}{chr(65 + n % 26)}")
    name = factory.LazyAttribute(lambda o: f"Country {o.code}")
    market = factory.SubFactory(MarketFactory)
    pricelist = factory.SubFactory(PricelistFactory)
    language = factory.SubFactory(LanguageFactory, code="en", name="English")
    is_ship_to = True


class StateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = State

    country = factory.SubFactory(CountryFactory)
    code = factory.Sequence(lambda n: f"S{n}")
    name = factory.LazyAttribute(lambda o: f"State {o.code}")


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product

    id = factory.Sequence(lambda n: 1000 + n)
    number = factory.LazyAttribute(lambda o: f"P-{o.id}")
    name = factory.Sequence(lambda n: f"Product {n}")
    brand = "Acme"


class VariantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Variant

    id = factory.Sequence(lambda n: 2000 + n)
    product = factory.SubFactory(ProductFactory)
    name = "Black"


class DisplayItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DisplayItem
        skip_postgeneration_save = True

    # Above every id the demo catalog and the tests name (12366, 23400...): a session creates
    # thousands, in any order, and must never reach one.
    id = factory.Sequence(lambda n: 500_000 + n)
    variant = factory.SubFactory(VariantFactory)
    uri = factory.LazyAttribute(lambda o: f"item-{o.id}")
    description = "A fine garment."
    images = factory.LazyFunction(lambda: ["https://cdn.example.com/a.jpg"])
    published = True

    @factory.post_generation
    def priced_everywhere(self, create, extracted, **kwargs):
        """``priced_everywhere=True``: priced in every pricelist that exists, so sold everywhere."""
        if not create or not extracted:
            return
        Price.objects.bulk_create(
            [
                Price(display_item=self, pricelist=pricelist, amount=Decimal("99.00"))
                for pricelist in Pricelist.objects.all()
            ],
            ignore_conflicts=True,
        )


class PriceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Price

    display_item = factory.SubFactory(DisplayItemFactory)
    pricelist = factory.SubFactory(PricelistFactory)
    amount = Decimal("99.00")


class SizeFactory(factory.django.DjangoModelFactory):
    """A size of a published display item."""

    class Meta:
        model = Size

    id = factory.Sequence(lambda n: 1_000_000 + n)  # as DisplayItemFactory's ids
    variant = factory.LazyFunction(lambda: DisplayItemFactory().variant)
    name = "M"
    sku = factory.Sequence(lambda n: f"SKU-{n}")


class StockFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Stock

    size = factory.SubFactory(SizeFactory)
    warehouse = factory.SubFactory(WarehouseFactory)
    physical = 0
    allocated = 0


class BackInStockProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BackInStockProduct

    display_item = factory.SubFactory(DisplayItemFactory)
    country = factory.SubFactory(CountryFactory)
    state = None
    external_id = factory.LazyAttribute(
        lambda o: f"{o.display_item.id}_{o.country.code}_{o.state.code if o.state else '00'}"
    )


class BackInStockVariantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BackInStockVariant

    product = factory.SubFactory(BackInStockProductFactory)
    size = factory.LazyAttribute(lambda o: SizeFactory(variant=o.product.display_item.variant))
    external_id = factory.LazyAttribute(lambda o: f"{o.product.external_id}_{o.size.id}")


class SubscriptionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Subscription

    variant = factory.SubFactory(BackInStockVariantFactory)
    email = factory.Sequence(lambda n: f"shopper{n}@example.com")
    language = factory.SubFactory(LanguageFactory, code="en", name="English")
