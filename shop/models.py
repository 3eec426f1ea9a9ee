"""The shop's catalog and stock, shaped like Centra's.

Ids of products, variants, display items and sizes are the shop's own and kept as given, so that
the storefront's item ``"12366-23400"`` (display item 12366, size 23400) needs no mapping.
"""

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import models

# The largest figure a PositiveIntegerField holds on every database we run on (PostgreSQL's
# integer): stock figures above it are refused as input, never a DataError.
COUNT_MAX = 2**31 - 1


def location_code_canonical(code: str) -> str:
    """The one form of a country or state code: trimmed and upper-case (``"qld "`` -> ``QLD``).

    Imports, the admin, look-ups and the virtual ids (``12366_AU_QLD``) all use it, so that a
    catalog writing ``Qld`` and a storefront writing ``qld`` mean the same state (issue 8.5).
    """
    return code.strip().upper()


class LocationCodeField(models.CharField):
    """A country or state code, stored and compared in its canonical form whatever is given."""

    def to_python(self, value: object) -> object:
        value = super().to_python(value)
        return location_code_canonical(value) if isinstance(value, str) else value

    def get_prep_value(self, value: object) -> object:
        value = super().get_prep_value(value)
        return location_code_canonical(value) if isinstance(value, str) else value


class Language(models.Model):
    code = models.CharField(max_length=10, unique=True, help_text="e.g. en, sv, de")
    name = models.CharField(max_length=100)
    is_default = models.BooleanField(
        default=False, help_text="The store's default language; exactly one should be default."
    )

    class Meta:
        ordering = ["code"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"],
                condition=models.Q(is_default=True),
                name="shop_language_single_default",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class Warehouse(models.Model):
    name = models.CharField(max_length=100, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class AllocationRule(models.Model):
    """An ordered list of warehouses that may serve a market's orders."""

    name = models.CharField(max_length=100, unique=True)
    warehouses: "models.ManyToManyField[Warehouse, AllocationRuleWarehouse]" = (
        models.ManyToManyField(
            Warehouse, through="AllocationRuleWarehouse", related_name="allocation_rules"
        )
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class AllocationRuleWarehouse(models.Model):
    allocation_rule = models.ForeignKey(
        AllocationRule, on_delete=models.CASCADE, related_name="rule_warehouses"
    )
    warehouse = models.ForeignKey(Warehouse, on_delete=models.PROTECT, related_name="+")
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["allocation_rule", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["allocation_rule", "warehouse"], name="shop_rule_warehouse_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.allocation_rule} #{self.position}: {self.warehouse}"


class Pricelist(models.Model):
    name = models.CharField(max_length=100, unique=True)
    currency = models.CharField(max_length=3, help_text="ISO 4217, e.g. SEK")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.currency})"


class Market(models.Model):
    name = models.CharField(max_length=100, unique=True)
    allocation_rule = models.ForeignKey(
        AllocationRule, on_delete=models.PROTECT, related_name="markets"
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Country(models.Model):
    """A country; a ship-to country when it has a market and a pricelist (CONTRACT §7)."""

    code = LocationCodeField(max_length=2, unique=True, help_text="ISO 3166-1 alpha-2")
    name = models.CharField(max_length=100)
    market = models.ForeignKey(
        Market, on_delete=models.PROTECT, null=True, blank=True, related_name="countries"
    )
    pricelist = models.ForeignKey(
        Pricelist, on_delete=models.PROTECT, null=True, blank=True, related_name="countries"
    )
    language = models.ForeignKey(
        Language, on_delete=models.SET_NULL, null=True, blank=True, related_name="countries"
    )
    is_ship_to = models.BooleanField(
        default=False,
        help_text="Shoppers can have parcels sent here. Needs a market and a pricelist.",
    )

    class Meta:
        ordering = ["code"]
        verbose_name_plural = "countries"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(is_ship_to=False)
                | (models.Q(market__isnull=False) & models.Q(pricelist__isnull=False)),
                name="shop_ship_to_country_has_market_and_pricelist",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"

    def clean(self) -> None:
        if self.is_ship_to and (self.market_id is None or self.pricelist_id is None):
            raise ValidationError("A ship-to country needs a market and a pricelist.")


class State(models.Model):
    country = models.ForeignKey(Country, on_delete=models.CASCADE, related_name="states")
    code = LocationCodeField(max_length=10, help_text="Stored upper-case (QLD).")
    name = models.CharField(max_length=100)

    class Meta:
        ordering = ["country", "code"]
        constraints = [
            models.UniqueConstraint(fields=["country", "code"], name="shop_state_unique_code")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.country_id and self.country.code}-{self.code})"


class Product(models.Model):
    id = models.BigIntegerField(primary_key=True)
    number = models.CharField(max_length=100, blank=True)
    name = models.CharField(max_length=255)
    brand = models.CharField(max_length=255, blank=True)
    collection = models.CharField(max_length=255, blank=True)
    product_type = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.number or self.id})"


class Variant(models.Model):
    """A product variant, e.g. the hoodie in black; shown to shoppers as one display item."""

    id = models.BigIntegerField(primary_key=True)
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="variants")
    name = models.CharField(max_length=255)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.product.name} - {self.name}"


class DisplayItem(models.Model):
    """What the storefront shows and sells: a variant with its URL, texts, images and prices."""

    id = models.BigIntegerField(primary_key=True)
    variant = models.OneToOneField(Variant, on_delete=models.CASCADE, related_name="display_item")
    uri = models.CharField(max_length=255)
    description = models.TextField(blank=True)
    images = models.JSONField(default=list, blank=True, help_text="List of image URLs.")
    published = models.BooleanField(default=False)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.id} {self.uri}"


class DisplayItemTranslation(models.Model):
    display_item = models.ForeignKey(
        DisplayItem, on_delete=models.CASCADE, related_name="translations"
    )
    language = models.ForeignKey(Language, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=255, blank=True)
    description = models.TextField(blank=True)
    uri = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["display_item", "language"]
        constraints = [
            models.UniqueConstraint(
                fields=["display_item", "language"], name="shop_translation_unique_language"
            )
        ]

    def __str__(self) -> str:
        return f"{self.display_item_id} [{self.language_id and self.language.code}]"


class Price(models.Model):
    display_item = models.ForeignKey(DisplayItem, on_delete=models.CASCADE, related_name="prices")
    pricelist = models.ForeignKey(Pricelist, on_delete=models.CASCADE, related_name="prices")
    amount = models.DecimalField(max_digits=12, decimal_places=2)

    class Meta:
        ordering = ["display_item", "pricelist"]
        constraints = [
            models.UniqueConstraint(
                fields=["display_item", "pricelist"], name="shop_price_unique_pricelist"
            ),
            models.CheckConstraint(
                condition=models.Q(amount__gte=Decimal("0")), name="shop_price_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.amount} ({self.pricelist_id and self.pricelist.currency})"


class Size(models.Model):
    id = models.BigIntegerField(primary_key=True)
    variant = models.ForeignKey(Variant, on_delete=models.CASCADE, related_name="sizes")
    name = models.CharField(max_length=50)
    sku = models.CharField(max_length=100, unique=True)
    ean = models.CharField(max_length=20, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.sku} ({self.name})"


class Stock(models.Model):
    """Stock of one size in one warehouse, as Centra keeps it.

    ``free_to_allocate`` (Centra's FTA) is what may still be sold: max(physical - allocated, 0).
    Change rows only through ``shop.services.stock_set`` so that listeners hear about it.
    """

    size = models.ForeignKey(Size, on_delete=models.CASCADE, related_name="stock")
    warehouse = models.ForeignKey(Warehouse, on_delete=models.PROTECT, related_name="stock")
    physical = models.PositiveIntegerField(default=0)
    allocated = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["size", "warehouse"]
        verbose_name_plural = "stock"
        constraints = [
            models.UniqueConstraint(fields=["size", "warehouse"], name="shop_stock_unique")
        ]

    def __str__(self) -> str:
        return f"{self.size.sku} in {self.warehouse.name}"

    @property
    def free_to_allocate(self) -> int:
        return max(self.physical - self.allocated, 0)
