"""Validation of the catalog file: every problem at once, each with its JSON path (CONTRACT §7).

The file is read in dependency order (languages, warehouses, allocation rules, pricelists, markets,
countries, products) whatever the order of its keys, so a reference can be checked against the
names seen so far plus those already in the database. Nothing here writes.
"""

import re
from decimal import Decimal
from typing import Any

from django.db.models import QuerySet

from config.api.fields import web_url_problem
from shop.catalog_import.entries import (
    AllocationRuleEntry,
    Catalog,
    CatalogProblem,
    CountryEntry,
    LanguageEntry,
    MarketEntry,
    PricelistEntry,
    ProductEntry,
    SizeEntry,
    StateEntry,
    TranslationEntry,
    VariantEntry,
    WarehouseEntry,
    WarehouseStockEntry,
)
from shop.catalog_import.reading import JsonReader, json_type, max_length
from shop.catalog_import.rows import any_of
from shop.models import (
    AllocationRule,
    Country,
    DisplayItem,
    DisplayItemTranslation,
    Language,
    Market,
    Pricelist,
    Product,
    Size,
    State,
    Variant,
    Warehouse,
    location_code_canonical,
)

_COUNTRY_CODE = re.compile(r"[A-Z]{2}")
_CURRENCY = re.compile(r"[A-Z]{3}")

_SECTIONS = (
    "languages",
    "warehouses",
    "allocationRules",
    "pricelists",
    "markets",
    "countries",
    "products",
)
_LANGUAGE_KEYS = ("code", "name", "default")
_WAREHOUSE_KEYS = ("name",)
_RULE_KEYS = ("name", "warehouses")
_PRICELIST_KEYS = ("name", "currency")
_MARKET_KEYS = ("name", "allocationRule")
_COUNTRY_KEYS = ("code", "name", "market", "pricelist", "language", "states")
_STATE_KEYS = ("code", "name")
_PRODUCT_KEYS = ("id", "number", "name", "brand", "collection", "productType", "variants")
_PRODUCT_TEXTS = (  # key, column, required
    ("number", "number", False),
    ("name", "name", True),
    ("brand", "brand", False),
    ("collection", "collection", False),
    ("productType", "product_type", False),
)
_VARIANT_KEYS = (
    "id",
    "name",
    "displayItemId",
    "uri",
    "published",
    "description",
    "images",
    "translations",
    "prices",
    "sizes",
)
_TRANSLATION_KEYS = ("name", "description", "uri")
_SIZE_KEYS = ("id", "name", "sku", "ean", "stock")
_STOCK_KEYS = ("physical", "allocated")


class _CatalogReader(JsonReader):
    """Walks the document once, collecting problems and the entries of the valid parts.

    An entry is built only when its own values are all valid. Children of an invalid entry are
    still read, so that their problems are reported too.
    """

    def __init__(self) -> None:
        super().__init__()
        # Small tables, read whole: references may point at rows the file does not list.
        self.db_languages = dict(Language.objects.values_list("code", "is_default"))
        self.db_warehouses = set(Warehouse.objects.values_list("name", flat=True))
        self.db_rules = set(AllocationRule.objects.values_list("name", flat=True))
        self.db_pricelists = set(Pricelist.objects.values_list("name", flat=True))
        self.db_markets = set(Market.objects.values_list("name", flat=True))
        # Path where each unique value was first seen, to name the original of a duplicate.
        self.languages: dict[str, str] = {}
        self.warehouses: dict[str, str] = {}
        self.rules: dict[str, str] = {}
        self.pricelists: dict[str, str] = {}
        self.markets: dict[str, str] = {}
        self.countries: dict[str, str] = {}
        self.products: dict[int, str] = {}
        self.variants: dict[int, str] = {}
        self.display_items: dict[int, str] = {}
        self.sizes: dict[int, str] = {}
        self.skus: dict[str, str] = {}
        # The parent the file gives each id, checked against the database at the end.
        self.product_of_variant: dict[int, int] = {}
        self.variant_of_display_item: dict[int, int] = {}
        self.display_item_of_variant: dict[int, int] = {}
        self.variant_of_size: dict[int, int] = {}
        self.size_of_sku: dict[str, int] = {}

    def read(self, data: object) -> Catalog:
        if not isinstance(data, dict):
            self.problem("", f"the catalog must be a JSON object, not {json_type(data)}")
            return Catalog()
        self.fields(data, "", _SECTIONS)
        catalog = Catalog(
            languages=self.read_languages(data),
            warehouses=self.read_warehouses(data),
            allocation_rules=self.read_allocation_rules(data),
            pricelists=self.read_pricelists(data),
            markets=self.read_markets(data),
            countries=self.read_countries(data),
            products=self.read_products(data),
        )
        self.check_parents_in_database()
        return catalog

    # --- reference data -------------------------------------------------------------------------

    def read_languages(self, data: dict[str, object]) -> list[LanguageEntry]:
        entries: list[LanguageEntry] = []
        defaults: list[str] = []
        for index, raw in enumerate(self.items(data, "languages", "")):
            path = f"languages[{index}]"
            obj = self.fields(raw, path, _LANGUAGE_KEYS)
            if obj is None:
                continue
            code = self.text(obj, "code", path, limit=max_length(Language, "code"), required=True)
            code = self.unique(self.languages, code, f"{path}.code", "language")
            name = self.text(obj, "name", path, limit=max_length(Language, "name"), required=True)
            default = self.flag(obj, "default", path)
            if default:
                defaults.append(path)
            if code is not None and name is not None:
                entries.append(LanguageEntry(code=code, name=name, default=default))
        if len(defaults) > 1:
            self.problem(
                "languages",
                'exactly one language must have "default": true, '
                f"not {len(defaults)} ({', '.join(defaults)})",
            )
        elif not defaults and entries:
            self.check_default_language_kept(entries)
        return entries

    def check_default_language_kept(self, entries: list[LanguageEntry]) -> None:
        """Without a default in the file the database's stays, so there must be one to keep."""
        current = next((code for code, is_default in self.db_languages.items() if is_default), None)
        if current is None:
            self.problem(
                "languages",
                'exactly one language must have "default": true '
                "(the database has no default language yet)",
            )
            return
        for entry in entries:
            if entry.code == current and entry.default is False:
                path = self.languages[entry.code].removesuffix(".code")
                self.problem(
                    f"{path}.default",
                    f'{current} is the default language; give another one "default": true instead',
                )

    def read_warehouses(self, data: dict[str, object]) -> list[WarehouseEntry]:
        entries: list[WarehouseEntry] = []
        for index, raw in enumerate(self.items(data, "warehouses", "")):
            path = f"warehouses[{index}]"
            obj = self.fields(raw, path, _WAREHOUSE_KEYS)
            if obj is None:
                continue
            name = self.text(obj, "name", path, limit=max_length(Warehouse, "name"), required=True)
            name = self.unique(self.warehouses, name, f"{path}.name", "warehouse")
            if name is not None:
                entries.append(WarehouseEntry(name=name))
        return entries

    def read_allocation_rules(self, data: dict[str, object]) -> list[AllocationRuleEntry]:
        entries: list[AllocationRuleEntry] = []
        for index, raw in enumerate(self.items(data, "allocationRules", "")):
            path = f"allocationRules[{index}]"
            obj = self.fields(raw, path, _RULE_KEYS)
            if obj is None:
                continue
            limit = max_length(AllocationRule, "name")
            name = self.text(obj, "name", path, limit=limit, required=True)
            name = self.unique(self.rules, name, f"{path}.name", "allocation rule")
            if "warehouses" not in obj:
                self.problem(f"{path}.warehouses", "is required")
            warehouses: list[str] = []
            seen: dict[str, str] = {}
            for position, value in enumerate(self.items(obj, "warehouses", path)):
                where = f"{path}.warehouses[{position}]"
                if not isinstance(value, str):
                    self.problem(where, f"must be a warehouse name, not {json_type(value)}")
                    continue
                known = self.reference(
                    value, where, "warehouse", in_file=self.warehouses, in_db=self.db_warehouses
                )
                if known and self.unique(seen, value, where, "warehouse") is not None:
                    warehouses.append(value)
            if name is not None:
                entries.append(AllocationRuleEntry(name=name, warehouses=tuple(warehouses)))
        return entries

    def read_pricelists(self, data: dict[str, object]) -> list[PricelistEntry]:
        entries: list[PricelistEntry] = []
        for index, raw in enumerate(self.items(data, "pricelists", "")):
            path = f"pricelists[{index}]"
            obj = self.fields(raw, path, _PRICELIST_KEYS)
            if obj is None:
                continue
            name = self.text(obj, "name", path, limit=max_length(Pricelist, "name"), required=True)
            name = self.unique(self.pricelists, name, f"{path}.name", "pricelist")
            currency = self.text(obj, "currency", path, limit=None, required=True)
            if currency is not None and not _CURRENCY.fullmatch(currency):
                self.problem(f"{path}.currency", "must be 3 uppercase letters (ISO 4217)")
                currency = None
            if name is not None and currency is not None:
                entries.append(PricelistEntry(name=name, currency=currency))
        return entries

    def read_markets(self, data: dict[str, object]) -> list[MarketEntry]:
        entries: list[MarketEntry] = []
        for index, raw in enumerate(self.items(data, "markets", "")):
            path = f"markets[{index}]"
            obj = self.fields(raw, path, _MARKET_KEYS)
            if obj is None:
                continue
            name = self.text(obj, "name", path, limit=max_length(Market, "name"), required=True)
            name = self.unique(self.markets, name, f"{path}.name", "market")
            rule = self.text(obj, "allocationRule", path, limit=None, required=True)
            known = self.reference(
                rule,
                f"{path}.allocationRule",
                "allocation rule",
                in_file=self.rules,
                in_db=self.db_rules,
            )
            if name is not None and rule is not None and known:
                entries.append(MarketEntry(name=name, allocation_rule=rule))
        return entries

    def read_countries(self, data: dict[str, object]) -> list[CountryEntry]:
        entries: list[CountryEntry] = []
        for index, raw in enumerate(self.items(data, "countries", "")):
            path = f"countries[{index}]"
            obj = self.fields(raw, path, _COUNTRY_KEYS)
            if obj is None:
                continue
            code = self.location_code(obj, path, limit=None)
            if code is not None and not _COUNTRY_CODE.fullmatch(code):
                self.problem(f"{path}.code", "must be 2 letters (ISO 3166-1 alpha-2)")
                code = None
            code = self.unique(self.countries, code, f"{path}.code", "country")
            name = self.text(obj, "name", path, limit=max_length(Country, "name"), required=True)
            # "" is an absent optional value here; None an invalid one, already reported.
            market = self.text(obj, "market", path, limit=None)
            pricelist = self.text(obj, "pricelist", path, limit=None)
            language = self.text(obj, "language", path, limit=None)
            known = [
                self.reference(
                    market, f"{path}.market", "market", in_file=self.markets, in_db=self.db_markets
                ),
                self.reference(
                    pricelist,
                    f"{path}.pricelist",
                    "pricelist",
                    in_file=self.pricelists,
                    in_db=self.db_pricelists,
                ),
                self.reference(
                    language,
                    f"{path}.language",
                    "language",
                    in_file=self.languages,
                    in_db=self.db_languages,
                ),
            ]
            # A ship-to country needs both (CONTRACT §7); one without the other is a mistake.
            if market and pricelist == "":
                self.problem(f"{path}.pricelist", "is required when market is given (ship-to)")
                pricelist = None
            if pricelist and market == "":
                self.problem(f"{path}.market", "is required when pricelist is given (ship-to)")
                market = None
            states = self.read_states(obj, path) if obj.get("states") is not None else None
            if (
                code is None
                or name is None
                or market is None
                or pricelist is None
                or language is None
                or not all(known)
            ):
                continue
            entries.append(
                CountryEntry(
                    code=code,
                    name=name,
                    market=market or None,
                    pricelist=pricelist or None,
                    language=language or None,
                    states=states,
                )
            )
        return entries

    def read_states(self, country: dict[str, object], path: str) -> tuple[StateEntry, ...]:
        entries: list[StateEntry] = []
        seen: dict[str, str] = {}
        for index, raw in enumerate(self.items(country, "states", path)):
            where = f"{path}.states[{index}]"
            obj = self.fields(raw, where, _STATE_KEYS)
            if obj is None:
                continue
            code = self.location_code(obj, where, limit=max_length(State, "code"))
            code = self.unique(seen, code, f"{where}.code", "state")
            name = self.text(obj, "name", where, limit=max_length(State, "name"), required=True)
            if code is not None and name is not None:
                entries.append(StateEntry(code=code, name=name))
        return tuple(entries)

    def location_code(self, obj: dict[str, object], path: str, *, limit: int | None) -> str | None:
        """A country or state code in its canonical upper-case form (``Qld`` reads as ``QLD``),
        so that codes differing only by case are duplicates."""
        code = self.text(obj, "code", path, limit=None, required=True)
        if code is None:
            return None
        code = location_code_canonical(code)
        if limit is not None and len(code) > limit:
            self.problem(f"{path}.code", f"must be at most {limit} characters")
            return None
        return code

    # --- products -------------------------------------------------------------------------------

    def read_products(self, data: dict[str, object]) -> list[ProductEntry]:
        entries: list[ProductEntry] = []
        for index, raw in enumerate(self.items(data, "products", "")):
            path = f"products[{index}]"
            obj = self.fields(raw, path, _PRODUCT_KEYS)
            if obj is None:
                continue
            product_id = self.unique(
                self.products, self.identifier(obj, "id", path), f"{path}.id", "product id"
            )
            texts = {
                key: self.text(obj, key, path, limit=max_length(Product, column), required=needed)
                for key, column, needed in _PRODUCT_TEXTS
            }
            variants = [
                self.read_variant(raw_variant, f"{path}.variants[{position}]", product_id)
                for position, raw_variant in enumerate(self.items(obj, "variants", path))
            ]
            valid_texts = {key: text for key, text in texts.items() if text is not None}
            valid_variants = [variant for variant in variants if variant is not None]
            if (
                product_id is None
                or len(valid_texts) < len(texts)
                or len(valid_variants) < len(variants)
            ):
                continue
            entries.append(
                ProductEntry(
                    id=product_id,
                    number=valid_texts["number"],
                    name=valid_texts["name"],
                    brand=valid_texts["brand"],
                    collection=valid_texts["collection"],
                    product_type=valid_texts["productType"],
                    variants=tuple(valid_variants),
                )
            )
        return entries

    def read_variant(self, raw: object, path: str, product_id: int | None) -> VariantEntry | None:
        obj = self.fields(raw, path, _VARIANT_KEYS)
        if obj is None:
            return None
        variant_id = self.unique(
            self.variants, self.identifier(obj, "id", path), f"{path}.id", "variant id"
        )
        display_item_id = self.unique(
            self.display_items,
            self.identifier(obj, "displayItemId", path),
            f"{path}.displayItemId",
            "display item id",
        )
        if variant_id is not None and product_id is not None:
            self.product_of_variant[variant_id] = product_id
        if variant_id is not None and display_item_id is not None:
            self.variant_of_display_item[display_item_id] = variant_id
            self.display_item_of_variant[variant_id] = display_item_id
        name = self.text(obj, "name", path, limit=max_length(Variant, "name"), required=True)
        uri = self.text(obj, "uri", path, limit=max_length(DisplayItem, "uri"), required=True)
        description = self.text(obj, "description", path, limit=None)
        published = self.flag(obj, "published", path)
        images = self.read_images(obj, path)
        translations = self.read_translations(obj, path)
        prices = self.read_prices(obj, path)
        sizes = [
            self.read_size(raw_size, f"{path}.sizes[{position}]", variant_id)
            for position, raw_size in enumerate(self.items(obj, "sizes", path))
        ]
        valid_sizes = [size for size in sizes if size is not None]
        if (
            variant_id is None
            or display_item_id is None
            or name is None
            or uri is None
            or description is None
            or images is None
            or translations is None
            or prices is None
            or len(valid_sizes) < len(sizes)
        ):
            return None
        return VariantEntry(
            id=variant_id,
            name=name,
            display_item_id=display_item_id,
            uri=uri,
            # Listing an item publishes it unless the file says otherwise; to withdraw one, the
            # file says "published": false (nothing absent from the file is touched).
            published=True if published is None else published,
            description=description,
            images=images,
            translations=translations,
            prices=prices,
            sizes=tuple(valid_sizes),
        )

    def read_images(self, obj: dict[str, object], path: str) -> tuple[str, ...] | None:
        images = self.items(obj, "images", path)
        valid: list[str] = []
        for index, value in enumerate(images):
            problem = (
                web_url_problem(value)
                if isinstance(value, str) and value
                else "must be a URL string"
            )
            if problem:
                self.problem(f"{path}.images[{index}]", problem)
            else:
                valid.append(str(value))
        return tuple(valid) if len(valid) == len(images) else None

    def read_translations(
        self, obj: dict[str, object], path: str
    ) -> dict[str, TranslationEntry] | None:
        translations = self.mapping(obj, "translations", path)
        if translations is None:
            return None
        entries: dict[str, TranslationEntry] = {}
        for code, raw in translations.items():
            at = f"{path}.translations.{code}"
            known = self.reference(
                code,
                at,
                "language",
                in_file=self.languages,
                in_db=self.db_languages,
                is_key=True,
            )
            fields = self.fields(raw, at, _TRANSLATION_KEYS)
            if fields is None:
                continue
            limit = max_length(DisplayItemTranslation, "name")
            name = self.text(fields, "name", at, limit=limit)
            description = self.text(fields, "description", at, limit=None)
            uri = self.text(fields, "uri", at, limit=max_length(DisplayItemTranslation, "uri"))
            if known and name is not None and description is not None and uri is not None:
                entries[code] = TranslationEntry(name=name, description=description, uri=uri)
        return entries if len(entries) == len(translations) else None

    def read_prices(self, obj: dict[str, object], path: str) -> dict[str, Decimal] | None:
        prices = self.mapping(obj, "prices", path)
        if prices is None:
            return None
        entries: dict[str, Decimal] = {}
        for name, value in prices.items():
            at = f"{path}.prices.{name}"
            known = self.reference(
                name,
                at,
                "pricelist",
                in_file=self.pricelists,
                in_db=self.db_pricelists,
                is_key=True,
            )
            amount = self.amount(value, at)
            if known and amount is not None:
                entries[name] = amount
        return entries if len(entries) == len(prices) else None

    def read_size(self, raw: object, path: str, variant_id: int | None) -> SizeEntry | None:
        obj = self.fields(raw, path, _SIZE_KEYS)
        if obj is None:
            return None
        size_id = self.unique(self.sizes, self.identifier(obj, "id", path), f"{path}.id", "size id")
        name = self.text(obj, "name", path, limit=max_length(Size, "name"), required=True)
        sku = self.text(obj, "sku", path, limit=max_length(Size, "sku"), required=True)
        sku = self.unique(self.skus, sku, f"{path}.sku", "SKU")
        if size_id is not None and variant_id is not None:
            self.variant_of_size[size_id] = variant_id
        if size_id is not None and sku is not None:
            self.size_of_sku[sku] = size_id
        ean = self.text(obj, "ean", path, limit=max_length(Size, "ean"))
        stock = self.read_stock(obj, path)
        if size_id is None or name is None or sku is None or ean is None or stock is None:
            return None
        return SizeEntry(id=size_id, name=name, sku=sku, ean=ean, stock=stock)

    def read_stock(
        self, obj: dict[str, object], path: str
    ) -> tuple[WarehouseStockEntry, ...] | None:
        stock = self.mapping(obj, "stock", path)
        if stock is None:
            return None
        entries: list[WarehouseStockEntry] = []
        for warehouse, raw in stock.items():
            at = f"{path}.stock.{warehouse}"
            known = self.reference(
                warehouse,
                at,
                "warehouse",
                in_file=self.warehouses,
                in_db=self.db_warehouses,
                is_key=True,
            )
            figures = self.fields(raw, at, _STOCK_KEYS)
            if figures is None:
                continue
            physical = self.count(figures, "physical", at, required=True)
            allocated = self.count(figures, "allocated", at, required=False)
            if known and physical is not None and allocated is not None:
                entries.append(
                    WarehouseStockEntry(warehouse=warehouse, physical=physical, allocated=allocated)
                )
        return tuple(entries) if len(entries) == len(stock) else None

    # --- against the database -------------------------------------------------------------------

    def check_parents_in_database(self) -> None:
        """Ids and SKUs are kept as given, so one must not already belong to a different parent.

        Moving a variant to another product, a display item to another variant or a size to
        another variant is refused: storefront item ids and Klaviyo ids are built from them.
        """
        checks: list[
            tuple[QuerySet[Any, tuple[Any, int]], str, dict[Any, int], dict[Any, str], str]
        ]
        checks = [
            (
                Variant.objects.values_list("id", "product_id"),
                "id",
                self.product_of_variant,
                self.variants,
                "variant {key} belongs to product {parent} in the database",
            ),
            (
                DisplayItem.objects.values_list("id", "variant_id"),
                "id",
                self.variant_of_display_item,
                self.display_items,
                "display item {key} belongs to variant {parent} in the database",
            ),
            (
                DisplayItem.objects.values_list("variant_id", "id"),
                "variant_id",
                self.display_item_of_variant,
                {
                    variant_id: self.display_items[display_item_id]
                    for variant_id, display_item_id in self.display_item_of_variant.items()
                },
                "variant {key} already has display item {parent} in the database",
            ),
            (
                Size.objects.values_list("id", "variant_id"),
                "id",
                self.variant_of_size,
                self.sizes,
                "size {key} belongs to variant {parent} in the database",
            ),
            (
                Size.objects.values_list("sku", "id"),
                "sku",
                self.size_of_sku,
                self.skus,
                "SKU {key} is already used by size {parent} in the database",
            ),
        ]
        for queryset, field, wanted, paths, message in checks:
            for key, parent in queryset.order_by().filter(any_of(field, wanted)):
                if parent != wanted[key]:
                    self.problem(paths[key], message.format(key=key, parent=parent))


def catalog_parse(*, data: object) -> tuple[Catalog, list[CatalogProblem]]:
    """Read a catalog document (parsed JSON): its valid entries and every problem found.

    The entries are complete only when there are no problems. Reads the database for references
    and collisions but never writes.
    """
    reader = _CatalogReader()
    catalog = reader.read(data)
    return catalog, reader.problems


def catalog_validate(*, data: object) -> list[CatalogProblem]:
    """Every problem of a catalog document (parsed JSON), each with its JSON path; [] when valid."""
    return catalog_parse(data=data)[1]
