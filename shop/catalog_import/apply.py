"""Writing a validated catalog: an upsert that writes only what differs from the database.

Existing rows are loaded in bulk into dicts keyed the way the file names them, compared column by
column, and only new or changed rows are written with ``bulk_create`` / ``bulk_update``. So a second
run of the same file writes nothing and announces nothing. Nothing absent from the file is deleted
(to withdraw an item, set ``"published": false``); the one replacement is an allocation rule's
warehouse list, which the file gives in full.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from tqdm import tqdm

from shop.catalog_import.entries import Catalog, CatalogInvalid, VariantEntry
from shop.catalog_import.rows import PlanWriter, RowCounts, any_of, plan_rows
from shop.catalog_import.validation import catalog_parse
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
from shop.services import StockLevel, stock_set


@dataclass(frozen=True)
class CatalogImportResult:
    """Row counts per model (keyed by model name), and who was told about what changed."""

    counts: Mapping[str, RowCounts]
    stock_changed_size_ids: frozenset[int]
    changed_display_item_ids: frozenset[int]

    @property
    def created(self) -> int:
        return sum(counts.created for counts in self.counts.values())

    @property
    def updated(self) -> int:
        return sum(counts.updated for counts in self.counts.values())

    @property
    def unchanged(self) -> int:
        return sum(counts.unchanged for counts in self.counts.values())

    @property
    def deleted(self) -> int:
        return sum(counts.deleted for counts in self.counts.values())

    def summary(self) -> str:
        deleted = f", removed {self.deleted}" if self.deleted else ""
        return (
            f"created {self.created}, updated {self.updated}{deleted}, "
            f"unchanged {self.unchanged} rows; "
            f"live stock changed for {_sizes(len(self.stock_changed_size_ids))}"
        )


def _sizes(count: int) -> str:
    return f"{count} size" if count == 1 else f"{count} sizes"


def _row_total(catalog: Catalog) -> int:
    """Rows the file describes, for the progress bar: each is created, updated or unchanged."""
    variants = [variant for product in catalog.products for variant in product.variants]
    sizes = [size for variant in variants for size in variant.sizes]
    return (
        len(catalog.languages)
        + len(catalog.warehouses)
        + sum(1 + len(rule.warehouses) for rule in catalog.allocation_rules)
        + len(catalog.pricelists)
        + len(catalog.markets)
        + sum(1 + len(country.states or ()) for country in catalog.countries)
        + len(catalog.products)
        + sum(2 + len(v.translations) + len(v.prices) for v in variants)
        + sum(1 + len(size.stock) for size in sizes)
    )


class _Import:
    """One run of ``catalog_apply``: each step loads, compares and writes one kind of row.

    Steps go in foreign-key order. Those keyed by name return every name's id, as the file may
    refer to rows it does not list.
    """

    def __init__(self, catalog: Catalog, writer: PlanWriter) -> None:
        self.catalog = catalog
        self.writer = writer
        self.variants: list[VariantEntry] = [
            variant for product in catalog.products for variant in product.variants
        ]
        self.display_item_ids = [variant.display_item_id for variant in self.variants]
        self.display_item_of_variant = {v.id: v.display_item_id for v in self.variants}
        self.changed_display_item_ids: set[int] = set()

    def run(self) -> frozenset[int]:
        """Write everything; returns the sizes whose stock changed."""
        language_ids = self.languages()
        warehouse_ids = self.names(Warehouse, [entry.name for entry in self.catalog.warehouses])
        rule_ids = self.names(
            AllocationRule, [entry.name for entry in self.catalog.allocation_rules]
        )
        self.rule_warehouses(rule_ids=rule_ids, warehouse_ids=warehouse_ids)
        pricelist_ids = self.pricelists()
        market_ids = self.markets(rule_ids=rule_ids)
        country_ids = self.countries(
            market_ids=market_ids, pricelist_ids=pricelist_ids, language_ids=language_ids
        )
        self.states(country_ids=country_ids)
        self.products_variants_display_items()
        self.translations(language_ids=language_ids)
        self.prices(pricelist_ids=pricelist_ids)
        self.sizes()
        return self.stock(warehouse_ids=warehouse_ids)

    def languages(self) -> dict[str, int]:
        entries = self.catalog.languages
        default = next((entry.code for entry in entries if entry.default), None)
        current = dict(Language.objects.values_list("code", "is_default"))
        wanted = [
            {
                "code": entry.code,
                "name": entry.name,
                # No default in the file: validation made sure the database has one; keep it.
                "is_default": entry.code == default if default else current.get(entry.code, False),
            }
            for entry in entries
        ]
        # Planned before the old default is cleared, so that a listed language losing the flag
        # counts as updated.
        plan = plan_rows(model=Language, key=["code"], fields=["name", "is_default"], wanted=wanted)
        cleared_elsewhere = 0
        if default is not None:
            # The partial unique constraint allows one default at any moment, and PostgreSQL
            # checks it row by row: clear the old default before the new one is written.
            cleared = Language.objects.filter(is_default=True).exclude(code=default)
            cleared_elsewhere = cleared.exclude(code__in=[e.code for e in entries]).count()
            cleared.update(is_default=False)
        self.writer.write(plan)
        self.writer.add(Language, RowCounts(updated=cleared_elsewhere))
        return dict(Language.objects.values_list("code", "id"))

    def names(self, model: type[Warehouse | AllocationRule], names: list[str]) -> dict[str, int]:
        """Rows that are only a name: create the missing ones."""
        wanted = [{"name": name} for name in names]
        self.writer.write(plan_rows(model=model, key=["name"], fields=[], wanted=wanted))
        return dict(model._default_manager.values_list("name", "id"))

    def rule_warehouses(self, *, rule_ids: dict[str, int], warehouse_ids: dict[str, int]) -> None:
        """Make each listed rule's warehouses exactly the file's, in the file's order."""
        wanted = [
            {
                "allocation_rule_id": rule_ids[rule.name],
                "warehouse_id": warehouse_ids[name],
                "position": position,
            }
            for rule in self.catalog.allocation_rules
            for position, name in enumerate(rule.warehouses)
        ]
        plan = plan_rows(
            model=AllocationRuleWarehouse,
            key=["allocation_rule_id", "warehouse_id"],
            fields=["position"],
            wanted=wanted,
            existing=AllocationRuleWarehouse.objects.filter(
                allocation_rule_id__in=[
                    rule_ids[rule.name] for rule in self.catalog.allocation_rules
                ]
            ),
        )
        keep = {(row["allocation_rule_id"], row["warehouse_id"]) for row in wanted}
        dropped = [pk for key, (pk, _) in plan.existing.items() if key not in keep]
        if dropped:
            AllocationRuleWarehouse.objects.filter(pk__in=dropped).delete()
        self.writer.write(plan, deleted=len(dropped))

    def pricelists(self) -> dict[str, int]:
        wanted = [
            {"name": entry.name, "currency": entry.currency} for entry in self.catalog.pricelists
        ]
        plan = self.writer.write(
            plan_rows(model=Pricelist, key=["name"], fields=["currency"], wanted=wanted)
        )
        if plan.to_update:
            # Prices reach Klaviyo keyed by currency.
            self.changed_display_item_ids.update(
                Price.objects.filter(
                    pricelist_id__in=[row.pk for row in plan.to_update]
                ).values_list("display_item_id", flat=True)
            )
        return dict(Pricelist.objects.values_list("name", "id"))

    def markets(self, *, rule_ids: dict[str, int]) -> dict[str, int]:
        wanted = [
            {"name": entry.name, "allocation_rule_id": rule_ids[entry.allocation_rule]}
            for entry in self.catalog.markets
        ]
        self.writer.write(
            plan_rows(model=Market, key=["name"], fields=["allocation_rule_id"], wanted=wanted)
        )
        return dict(Market.objects.values_list("name", "id"))

    def countries(
        self,
        *,
        market_ids: dict[str, int],
        pricelist_ids: dict[str, int],
        language_ids: dict[str, int],
    ) -> dict[str, int]:
        wanted = []
        for entry in self.catalog.countries:
            market_id = market_ids[entry.market] if entry.market else None
            pricelist_id = pricelist_ids[entry.pricelist] if entry.pricelist else None
            wanted.append(
                {
                    "code": entry.code,
                    "name": entry.name,
                    "market_id": market_id,
                    "pricelist_id": pricelist_id,
                    "language_id": language_ids[entry.language] if entry.language else None,
                    # CONTRACT §7: listed with a market and a pricelist.
                    "is_ship_to": market_id is not None and pricelist_id is not None,
                }
            )
        fields = ["name", "market_id", "pricelist_id", "language_id", "is_ship_to"]
        self.writer.write(plan_rows(model=Country, key=["code"], fields=fields, wanted=wanted))
        return dict(Country.objects.values_list("code", "id"))

    def states(self, *, country_ids: dict[str, int]) -> None:
        wanted = [
            {"country_id": country_ids[country.code], "code": state.code, "name": state.name}
            for country in self.catalog.countries
            for state in country.states or ()
        ]
        plan = plan_rows(
            model=State,
            key=["country_id", "code"],
            fields=["name"],
            wanted=wanted,
            existing=State.objects.filter(country_id__in={row["country_id"] for row in wanted}),
        )
        self.writer.write(plan)

    def products_variants_display_items(self) -> None:
        products = [
            {
                "id": entry.id,
                "number": entry.number,
                "name": entry.name,
                "brand": entry.brand,
                "collection": entry.collection,
                "product_type": entry.product_type,
            }
            for entry in self.catalog.products
        ]
        variants = [
            {"id": variant.id, "product_id": product.id, "name": variant.name}
            for product in self.catalog.products
            for variant in product.variants
        ]
        display_items = [
            {
                "id": variant.display_item_id,
                "variant_id": variant.id,
                "uri": variant.uri,
                "description": variant.description,
                "images": list(variant.images),
                "published": variant.published,
            }
            for variant in self.variants
        ]
        product_plan = self.writer.write(
            plan_rows(
                model=Product,
                key=["id"],
                fields=["number", "name", "brand", "collection", "product_type"],
                wanted=products,
                existing=Product.objects.filter(any_of("id", [row["id"] for row in products])),
            )
        )
        # Validation refused moving a variant, display item or size to another parent, so the
        # parent columns need no comparing.
        variant_plan = self.writer.write(
            plan_rows(
                model=Variant,
                key=["id"],
                fields=["name"],
                wanted=variants,
                existing=Variant.objects.filter(any_of("id", [row["id"] for row in variants])),
            )
        )
        display_item_plan = self.writer.write(
            plan_rows(
                model=DisplayItem,
                key=["id"],
                fields=["uri", "description", "images", "published"],
                wanted=display_items,
                existing=DisplayItem.objects.filter(any_of("id", self.display_item_ids)),
            )
        )
        changed = self.changed_display_item_ids
        changed.update(row.pk for row in display_item_plan.written)
        changed.update(self.display_item_of_variant[row.pk] for row in variant_plan.written)
        if product_plan.written:
            # A product's display items include those of variants the file does not list.
            product_ids = [row.pk for row in product_plan.written]
            changed.update(
                DisplayItem.objects.filter(any_of("variant__product_id", product_ids)).values_list(
                    "id", flat=True
                )
            )

    def translations(self, *, language_ids: dict[str, int]) -> None:
        wanted = [
            {
                "display_item_id": variant.display_item_id,
                "language_id": language_ids[code],
                "name": entry.name,
                "description": entry.description,
                "uri": entry.uri,
            }
            for variant in self.variants
            for code, entry in variant.translations.items()
        ]
        self.display_item_rows(
            DisplayItemTranslation, "language_id", ["name", "description", "uri"], wanted
        )

    def prices(self, *, pricelist_ids: dict[str, int]) -> None:
        wanted = [
            {
                "display_item_id": variant.display_item_id,
                "pricelist_id": pricelist_ids[name],
                "amount": amount,
            }
            for variant in self.variants
            for name, amount in variant.prices.items()
        ]
        self.display_item_rows(Price, "pricelist_id", ["amount"], wanted)

    def display_item_rows(
        self,
        model: type[DisplayItemTranslation | Price],
        per: str,
        fields: list[str],
        wanted: list[dict[str, Any]],
    ) -> None:
        """Rows of a display item, one per language or pricelist (``per``)."""
        plan = plan_rows(
            model=model,
            key=["display_item_id", per],
            fields=fields,
            wanted=wanted,
            existing=model._default_manager.filter(
                any_of("display_item_id", self.display_item_ids)
            ),
        )
        self.writer.write(plan)
        self.changed_display_item_ids.update(row.display_item_id for row in plan.written)

    def sizes(self) -> None:
        wanted = [
            {
                "id": size.id,
                "variant_id": variant.id,
                "name": size.name,
                "sku": size.sku,
                "ean": size.ean,
            }
            for variant in self.variants
            for size in variant.sizes
        ]
        plan = self.writer.write(
            plan_rows(
                model=Size,
                key=["id"],
                fields=["name", "sku", "ean"],
                wanted=wanted,
                existing=Size.objects.filter(any_of("id", [row["id"] for row in wanted])),
            )
        )
        # A size's name and SKU are part of what Klaviyo shows for the display item.
        self.changed_display_item_ids.update(
            self.display_item_of_variant[row.variant_id] for row in plan.written
        )

    def stock(self, *, warehouse_ids: dict[str, int]) -> frozenset[int]:
        """Absolute stock levels, through ``stock_set`` like every stock change."""
        levels = [
            StockLevel(
                size_id=size.id,
                warehouse_id=warehouse_ids[stock.warehouse],
                physical=stock.physical,
                allocated=stock.allocated,
            )
            for variant in self.variants
            for size in variant.sizes
            for stock in size.stock
        ]
        # stock_set locks and loads a model instance per row of every size it is given; most of
        # a re-import's stock is unchanged, so pass it only the levels that differ from a cheap
        # read of the figures. It still compares again under its lock, and decides.
        current = {
            (size_id, warehouse_id): (physical, allocated)
            for size_id, warehouse_id, physical, allocated in Stock.objects.filter(
                any_of("size_id", {level.size_id for level in levels})
            )
            .order_by()
            .values_list("size_id", "warehouse_id", "physical", "allocated")
        }
        differing = [
            level
            for level in levels
            if current.get((level.size_id, level.warehouse_id)) != (level.physical, level.allocated)
        ]
        changed = stock_set(levels=differing).changed_size_ids
        self.writer.bar.update(len(levels))
        return changed


# Rows that decide which warehouses serve which ship-to country.
ALLOCATION_MODELS = frozenset({"AllocationRuleWarehouse", "Market", "Country"})


def catalog_apply(*, catalog: Catalog, progress: bool = False) -> CatalogImportResult:
    """Upsert a validated catalog in one transaction and announce what changed on commit.

    Rows are matched by the file's keys (ids for products, variants, display items and sizes;
    codes and names for the rest) and only new or different rows are written. Nothing absent
    from the file is deleted; an allocation rule's warehouses are replaced by the file's list.
    Stock goes through ``stock_set``, which announces the sizes whose stock changed; the display
    items whose row, product, variant, sizes, prices or translations changed are announced here.
    """
    with (
        transaction.atomic(),
        # disable=None: tqdm switches itself off when stderr is not a terminal.
        tqdm(
            total=_row_total(catalog),
            desc="import_catalog",
            unit="row",
            disable=None if progress else True,
            delay=0.5,
        ) as bar,
    ):
        writer = PlanWriter(bar)
        run = _Import(catalog, writer)
        stock_changed_size_ids = run.run()
        announce_display_items_changed(display_item_ids=run.changed_display_item_ids)
        if any(
            counts.created or counts.updated or counts.deleted
            for model, counts in writer.counts.items()
            if model in ALLOCATION_MODELS
        ):
            announce_allocation_changed()
    return CatalogImportResult(
        counts=writer.counts,
        stock_changed_size_ids=stock_changed_size_ids,
        changed_display_item_ids=frozenset(run.changed_display_item_ids),
    )


def catalog_import_run(*, data: object, progress: bool = False) -> CatalogImportResult:
    """Import a catalog document (parsed JSON, CONTRACT §7): validate all of it, then upsert.

    Raises ``CatalogInvalid`` with every problem, each with its JSON path, and changes nothing
    when the document has any problem. Otherwise see ``catalog_apply``; importing the same
    document twice writes and announces nothing the second time.
    """
    # Validation reads in the same transaction as the writes that rely on what it checked.
    with transaction.atomic():
        catalog, problems = catalog_parse(data=data)
        if problems:
            raise CatalogInvalid(problems)
        return catalog_apply(catalog=catalog, progress=progress)
