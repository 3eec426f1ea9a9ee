"""Admin pages for the catalog and stock.

Two rules hold on every page here:

- Stock is written only through ``shop.services.stock_set``, so that listeners hear of it
  (``stock_changed``). Stock rows are never deleted in the admin; setting physical to 0 is the
  way to take a size out of a warehouse.
- Saving a display item (with its translations and prices), a product, a variant or a size
  announces ``display_items_changed`` for the display items it touches; changing which
  warehouses serve a ship-to country (allocation rules, markets, countries) announces
  ``allocation_changed``.

``AllocationRuleWarehouse``, ``DisplayItemTranslation`` and ``Price`` have no page of their own:
they mean nothing without their parent and are edited in its inline.
"""

from collections.abc import Sequence
from typing import Any, ClassVar

from django import forms
from django.contrib import admin
from django.db import models
from django.db.models import Count, Prefetch, QuerySet
from django.forms.models import BaseInlineFormSet, BaseModelFormSet, InlineForeignKeyField
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from shop.hooks import announce_allocation_changed, announce_display_items_changed
from shop.models import (
    AllocationRule,
    AllocationRuleWarehouse,
    Country,
    DisplayItem,
    DisplayItemTranslation,
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
from shop.selectors import availability_by_size_for_ship_to
from shop.services import StockLevel, stock_set

STOCK_NOT_DELETABLE_HELP = (
    "Absolute figure. Stock rows are not deleted in the admin: to take a size out of a warehouse, "
    "set physical to 0. Klaviyo is told of every change you save."
)


def _admin_link(obj: Any, text: object) -> SafeString:
    url = reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}">{}</a>', url, text)


def _display_item_link(variant: Variant) -> SafeString | str:
    try:
        display_item = variant.display_item
    except DisplayItem.DoesNotExist:
        return "-"
    return _admin_link(display_item, display_item)


class _AnnouncesDisplayItemsAdmin(admin.ModelAdmin):
    """Announces ``display_items_changed`` after a save or delete on this page.

    ``display_item_path`` is the lookup from ``DisplayItem`` to this admin's model: the display
    items announced are those reached from the saved or deleted rows.
    """

    display_item_path: ClassVar[str]

    def _display_item_ids(self, queryset: QuerySet[Any]) -> list[int]:
        lookup = f"{self.display_item_path}__in"
        return list(DisplayItem.objects.filter(**{lookup: queryset}).values_list("id", flat=True))

    def _announce(self, queryset: QuerySet[Any]) -> None:
        announce_display_items_changed(display_item_ids=self._display_item_ids(queryset))

    def save_related(
        self,
        request: HttpRequest,
        form: forms.ModelForm,
        formsets: Sequence[BaseModelFormSet],
        change: bool,
    ) -> None:
        super().save_related(request, form, formsets, change)
        # Stock has its own announcement (stock_changed, sent by stock_set); a save that only
        # changed stock did not change the display item.
        related_changed = any(
            formset.has_changed() for formset in formsets if formset.model is not Stock
        )
        if not change or form.has_changed() or related_changed:
            self._announce(self.model.objects.filter(pk=form.instance.pk))

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        ids = self._display_item_ids(self.model.objects.filter(pk=obj.pk))
        super().delete_model(request, obj)
        announce_display_items_changed(display_item_ids=ids)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        ids = self._display_item_ids(queryset)
        super().delete_queryset(request, queryset)
        announce_display_items_changed(display_item_ids=ids)


class _AnnouncesAllocationAdmin(admin.ModelAdmin):
    """Announces ``allocation_changed`` when a save or delete may change which warehouses serve
    which ship-to country: an added or deleted row, a change to one of ``allocation_fields``, or
    a change in an inline of ``allocation_inline_models``.
    """

    allocation_fields: ClassVar[tuple[str, ...]] = ()
    allocation_inline_models: ClassVar[tuple[type[Any], ...]] = ()

    def save_related(
        self,
        request: HttpRequest,
        form: forms.ModelForm,
        formsets: Sequence[BaseModelFormSet],
        change: bool,
    ) -> None:
        super().save_related(request, form, formsets, change)
        inline_changed = any(
            formset.has_changed()
            for formset in formsets
            if formset.model in self.allocation_inline_models
        )
        if not change or set(form.changed_data) & set(self.allocation_fields) or inline_changed:
            announce_allocation_changed()

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        super().delete_model(request, obj)
        announce_allocation_changed()

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        super().delete_queryset(request, queryset)
        announce_allocation_changed()


class _ShopIdOnlyOnAddAdmin(admin.ModelAdmin):
    """The shop's own ids are primary keys: editing one would copy the row, not rename it."""

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        readonly = tuple(super().get_readonly_fields(request, obj))
        return ("id", *readonly) if obj is not None else readonly


# --- Languages, warehouses, allocation, pricelists, markets, countries ---------------------------


@admin.register(Language)
class LanguageAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "is_default")
    search_fields = ("code", "name")
    ordering = ("code",)


@admin.register(Warehouse)
class WarehouseAdmin(admin.ModelAdmin):
    list_display = ("name",)
    search_fields = ("name",)
    ordering = ("name",)


class _TabularInline(admin.TabularInline):
    """A tabular inline of the catalog: its selects keep to their column (``shop/admin.css``)."""

    class Media:
        css = {"all": ("shop/admin.css",)}


class AllocationRuleWarehouseInline(_TabularInline):
    model = AllocationRuleWarehouse
    fields = ("position", "warehouse")
    ordering = ("position",)
    extra = 0


@admin.register(AllocationRule)
class AllocationRuleAdmin(_AnnouncesAllocationAdmin):
    allocation_inline_models = (AllocationRuleWarehouse,)
    list_display = ("name", "warehouses_in_order")
    search_fields = ("name",)
    ordering = ("name",)
    inlines = (AllocationRuleWarehouseInline,)

    def get_queryset(self, request: HttpRequest) -> QuerySet[AllocationRule]:
        return (
            super()
            .get_queryset(request)
            .prefetch_related(
                Prefetch(
                    "rule_warehouses",
                    queryset=AllocationRuleWarehouse.objects.select_related("warehouse").order_by(
                        "position"
                    ),
                )
            )
        )

    @admin.display(description="warehouses, in order")
    def warehouses_in_order(self, obj: AllocationRule) -> str:
        return " → ".join(row.warehouse.name for row in obj.rule_warehouses.all())


@admin.register(Pricelist)
class PricelistAdmin(admin.ModelAdmin):
    list_display = ("name", "currency")
    search_fields = ("name", "currency")
    list_filter = ("currency",)
    ordering = ("name",)


@admin.register(Market)
class MarketAdmin(_AnnouncesAllocationAdmin):
    allocation_fields = ("allocation_rule",)
    list_display = ("name", "allocation_rule", "country_count")
    search_fields = ("name",)
    list_filter = ("allocation_rule",)
    list_select_related = ("allocation_rule",)
    ordering = ("name",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Market]:
        return super().get_queryset(request).annotate(country_count=Count("countries"))

    @admin.display(description="countries", ordering="country_count")
    def country_count(self, obj: Market) -> int:
        return int(obj.country_count)  # type: ignore[attr-defined]


class StateInline(_TabularInline):
    model = State
    fields = ("code", "name")
    ordering = ("code",)
    extra = 0


@admin.register(Country)
class CountryAdmin(_AnnouncesAllocationAdmin):
    allocation_fields = ("market", "is_ship_to")
    list_display = ("code", "name", "is_ship_to", "market", "pricelist", "language")
    search_fields = ("code", "name")
    list_filter = ("is_ship_to", "market")
    list_select_related = ("market", "pricelist", "language")
    ordering = ("code",)
    inlines = (StateInline,)


@admin.register(State)
class StateAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "country")
    search_fields = ("code", "name", "country__code", "country__name")
    list_select_related = ("country",)
    autocomplete_fields = ("country",)
    ordering = ("country__code", "code")


# --- Products, variants, display items ----------------------------------------------------------


class VariantInline(_TabularInline):
    """The product's variants; a new variant is added on the variant page, which asks its id."""

    model = Variant
    fields = ("name", "display_item_link")
    readonly_fields = ("display_item_link",)
    show_change_link = True
    extra = 0

    def get_queryset(self, request: HttpRequest) -> QuerySet[Variant]:
        return super().get_queryset(request).select_related("product", "display_item")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="display item")
    def display_item_link(self, obj: Variant) -> SafeString | str:
        return _display_item_link(obj)


@admin.register(Product)
class ProductAdmin(_AnnouncesDisplayItemsAdmin, _ShopIdOnlyOnAddAdmin):
    display_item_path = "variant__product"
    list_display = ("id", "number", "name", "brand", "collection", "product_type")
    search_fields = ("id__exact", "number", "name", "brand")
    list_filter = ("brand", "collection", "product_type")
    ordering = ("id",)
    inlines = (VariantInline,)


@admin.register(Variant)
class VariantAdmin(_AnnouncesDisplayItemsAdmin, _ShopIdOnlyOnAddAdmin):
    display_item_path = "variant"
    list_display = ("id", "name", "product", "display_item_link")
    search_fields = ("id__exact", "name", "product__name", "product__number")
    list_select_related = ("product", "display_item")
    autocomplete_fields = ("product",)
    ordering = ("id",)

    @admin.display(description="display item")
    def display_item_link(self, obj: Variant) -> SafeString | str:
        return _display_item_link(obj)


class ImageListField(forms.CharField):
    """The display item's images edited as a list, one URL a line, not as raw JSON."""

    widget = forms.Textarea(attrs={"rows": 3, "cols": 80})

    def prepare_value(self, value: Any) -> str:
        if isinstance(value, list):
            return "\n".join(str(url) for url in value)
        return str(value or "")

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        text = super().to_python(value) or ""
        return [line.strip() for line in text.splitlines() if line.strip()]

    def validate(self, value: Any) -> None:
        if self.required and not value:
            raise forms.ValidationError(self.error_messages["required"], code="required")
        validate = forms.URLField(assume_scheme="https").clean
        for url in value:
            validate(url)


class DisplayItemForm(forms.ModelForm):
    images = ImageListField(
        required=False, help_text="One image URL a line, the first is the main one."
    )

    class Meta:
        model = DisplayItem
        fields = ("id", "variant", "uri", "published", "description", "images")


class DisplayItemTranslationInline(_TabularInline):
    model = DisplayItemTranslation
    fields = ("language", "name", "uri", "description")
    extra = 0
    # Narrow enough that the table fits the page beside its labels at 1440 px.
    formfield_overrides = {
        models.TextField: {"widget": forms.Textarea(attrs={"rows": 2, "cols": 40})},
        models.CharField: {"widget": forms.TextInput(attrs={"size": 24})},
    }


class PriceInline(_TabularInline):
    model = Price
    fields = ("pricelist", "amount")
    extra = 0


@admin.register(DisplayItem)
class DisplayItemAdmin(_AnnouncesDisplayItemsAdmin, _ShopIdOnlyOnAddAdmin):
    """The merchandisers' main page: texts, prices, and what each size has for each ship-to."""

    display_item_path = "pk"
    list_display = ("id", "uri", "product_name", "variant_name", "published", "brand", "collection")
    search_fields = ("id__exact", "uri", "variant__product__name")
    list_filter = ("published", "variant__product__brand", "variant__product__collection")
    list_select_related = ("variant__product",)
    autocomplete_fields = ("variant",)
    ordering = ("id",)
    form = DisplayItemForm
    fields = ("id", "variant", "uri", "published", "description", "images", "sizes")
    readonly_fields = ("sizes",)
    inlines = (DisplayItemTranslationInline, PriceInline)

    class Media:
        css = {"all": ("shop/admin.css",)}  # the sizes' table scrolls in its box

    @admin.display(description="product", ordering="variant__product__name")
    def product_name(self, obj: DisplayItem) -> str:
        return obj.variant.product.name

    @admin.display(description="variant", ordering="variant__name")
    def variant_name(self, obj: DisplayItem) -> str:
        return obj.variant.name

    @admin.display(description="brand", ordering="variant__product__brand")
    def brand(self, obj: DisplayItem) -> str:
        return obj.variant.product.brand

    @admin.display(description="collection", ordering="variant__product__collection")
    def collection(self, obj: DisplayItem) -> str:
        return obj.variant.product.collection

    @admin.display(description="sizes and availability per ship-to country")
    def sizes(self, obj: DisplayItem) -> SafeString | str:
        """One query for the sizes, one for the countries, one per ship-to country."""
        if obj._state.adding:
            return "Save the display item to see its sizes."
        sizes = list(Size.objects.filter(variant_id=obj.variant_id).order_by("id"))
        if not sizes:
            return "No sizes."
        countries = list(Country.objects.filter(is_ship_to=True).order_by("code"))
        size_ids = [size.id for size in sizes]
        availability = {
            country.code: availability_by_size_for_ship_to(
                size_ids=size_ids, country_code=country.code
            )
            for country in countries
        }
        header = format_html_join(
            "", '<th title="{}">{}</th>', ((country.name, country.code) for country in countries)
        )
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td>{}</tr>",
            (
                (
                    _admin_link(size, size.id),
                    size.name,
                    size.sku,
                    size.ean,
                    format_html_join(
                        "",
                        "<td>{}</td>",
                        ((availability[country.code][size.id],) for country in countries),
                    ),
                )
                for size in sizes
            ),
        )
        return format_html(
            '<div class="size-availability-scroll"><table class="size-availability"><thead><tr>'
            "<th>size</th><th>name</th><th>SKU</th><th>EAN</th>{}</tr></thead><tbody>{}</tbody>"
            "</table></div>",
            header,
            rows,
        )


# --- Sizes and stock ------------------------------------------------------------------------------


class StockForm(forms.ModelForm):
    """Stock of one size in one warehouse; which size and warehouse is fixed once saved."""

    class Meta:
        model = Stock
        fields = ("size", "warehouse", "physical", "allocated")
        help_texts = {"physical": STOCK_NOT_DELETABLE_HELP}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.instance._state.adding:
            # stock_set writes by (size, warehouse): a changed warehouse would add a row, not
            # move this one.
            for name in ("size", "warehouse"):
                field = self.fields.get(name)
                # In the Size page's inline the size is the parent, set by the formset.
                if field is not None and not isinstance(field, InlineForeignKeyField):
                    field.disabled = True


def _stock_level(stock: Stock) -> StockLevel:
    return StockLevel(
        size_id=stock.size_id,
        warehouse_id=stock.warehouse_id,
        physical=stock.physical,
        allocated=stock.allocated,
    )


def _stock_formset_save(formset: BaseInlineFormSet) -> None:
    """Write the formset's new and changed rows through ``stock_set``.

    ``save(commit=False)`` writes nothing; it collects the rows and records what changed for
    the admin's history.
    """
    stock_set(levels=[_stock_level(stock) for stock in formset.save(commit=False)])


class StockInline(_TabularInline):
    model = Stock
    form = StockForm
    fields = ("warehouse", "physical", "allocated", "free_to_allocate", "updated_at")
    readonly_fields = ("free_to_allocate", "updated_at")
    ordering = ("warehouse__name",)
    can_delete = False
    extra = 0

    def get_queryset(self, request: HttpRequest) -> QuerySet[Stock]:
        return super().get_queryset(request).select_related("warehouse")

    @admin.display(description="free to allocate")
    def free_to_allocate(self, obj: Stock) -> int:
        return obj.free_to_allocate


@admin.register(Size)
class SizeAdmin(_AnnouncesDisplayItemsAdmin, _ShopIdOnlyOnAddAdmin):
    display_item_path = "variant__sizes"
    list_display = ("id", "sku", "name", "ean", "variant", "display_item_link")
    search_fields = ("id__exact", "sku", "ean", "name")
    list_filter = ("variant__product__brand",)
    list_select_related = ("variant__product", "variant__display_item")
    autocomplete_fields = ("variant",)
    ordering = ("id",)
    inlines = (StockInline,)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        readonly = tuple(super().get_readonly_fields(request, obj))
        # Sizes do not move between variants; announcing the old display item would need it.
        return (*readonly, "variant") if obj is not None else readonly

    @admin.display(description="display item")
    def display_item_link(self, obj: Size) -> SafeString | str:
        return _display_item_link(obj.variant)

    def save_formset(
        self,
        request: HttpRequest,
        form: forms.ModelForm,
        formset: BaseInlineFormSet,
        change: bool,
    ) -> None:
        if formset.model is Stock:
            _stock_formset_save(formset)
        else:
            super().save_formset(request, form, formset, change)


@admin.register(Stock)
class StockAdmin(admin.ModelAdmin):
    form = StockForm
    list_display = (
        "size",
        "warehouse",
        "physical",
        "allocated",
        "free_to_allocate",
        "updated_at",
    )
    search_fields = ("size__sku",)
    list_filter = ("warehouse",)
    list_select_related = ("size", "warehouse")
    autocomplete_fields = ("size",)
    readonly_fields = ("free_to_allocate", "updated_at")
    ordering = ("size__sku", "warehouse__name")

    @admin.display(description="free to allocate")
    def free_to_allocate(self, obj: Stock) -> int:
        return obj.free_to_allocate

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(
        self, request: HttpRequest, obj: Stock, form: forms.ModelForm, change: bool
    ) -> None:
        stock_set(levels=[_stock_level(obj)])
        # The admin needs the row's id for its history and redirect.
        obj.pk = Stock.objects.only("pk").get(size_id=obj.size_id, warehouse_id=obj.warehouse_id).pk
