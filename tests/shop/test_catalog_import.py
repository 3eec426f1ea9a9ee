import copy
import importlib
import json
from collections.abc import Callable
from decimal import Decimal
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from backinstock.models import BackInStockVariant
from shop.catalog_import import CatalogInvalid, catalog_import_run, catalog_validate
from shop.hooks import display_items_changed, stock_changed
from shop.models import (
    AllocationRule,
    Country,
    DisplayItem,
    DisplayItemTranslation,
    Language,
    Price,
    Product,
    Size,
    Stock,
    Variant,
)
from tests.conftest import DEMO_CATALOG
from tests.factories import LanguageFactory, PricelistFactory, SizeFactory, WarehouseFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo() -> dict[str, Any]:
    """A fresh copy of the demo catalog, free to mutate."""
    return json.loads(DEMO_CATALOG.read_text(encoding="utf-8"))


@pytest.fixture
def demo_imported(demo):
    return catalog_import_run(data=demo)


@pytest.fixture
def received():
    """Every shop signal sent, as (signal name, ids), while the test runs."""
    calls: list[tuple[str, frozenset[int]]] = []

    def on_stock(sender, size_ids, **kwargs):
        calls.append(("stock_changed", size_ids))

    def on_items(sender, display_item_ids, **kwargs):
        calls.append(("display_items_changed", display_item_ids))

    stock_changed.connect(on_stock)
    display_items_changed.connect(on_items)
    yield calls
    stock_changed.disconnect(on_stock)
    display_items_changed.disconnect(on_items)


def _row_counts() -> dict[str, int]:
    models = [Language, AllocationRule, Country, Product, Variant, DisplayItem, Price, Size, Stock]
    return {model.__name__: model.objects.count() for model in models}


def _write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_the_demo_catalog_imports_its_products_sizes_and_stock(demo_imported):
    assert Product.objects.count() == 3
    assert DisplayItem.objects.count() == 5
    assert Size.objects.count() == 11
    assert Stock.objects.count() == 21
    stock = Stock.objects.get(size__sku="HD-1-BLK-S", warehouse__name="Stockholm")
    assert (stock.physical, stock.allocated) == (14, 2)
    assert DisplayItem.objects.get(id=12501).published is False


def test_the_demo_catalog_makes_countries_with_market_and_pricelist_ship_to(demo_imported):
    us = Country.objects.get(code="US")
    assert us.is_ship_to
    assert (us.market.name, us.pricelist.name, us.language.code) == ("USA", "USD", "en")
    assert sorted(us.states.values_list("code", flat=True)) == ["CA", "NY", "TX"]
    norway = Country.objects.get(code="NO")
    assert not norway.is_ship_to
    assert norway.market is None


def test_the_demo_catalog_keeps_the_order_of_allocation_rule_warehouses(demo_imported):
    rule = AllocationRule.objects.get(name="DACH")
    ordered = rule.rule_warehouses.order_by("position").values_list("warehouse__name", flat=True)
    assert list(ordered) == ["Berlin", "Stockholm"]


def test_the_demo_catalog_imports_translations_prices_and_the_default_language(demo_imported):
    translation = DisplayItemTranslation.objects.get(display_item_id=12366, language__code="de")
    assert (translation.name, translation.uri) == ("Kapuzenpullover", "kapuzenpullover-schwarz")
    prices = dict(
        Price.objects.filter(display_item_id=12366).values_list("pricelist__name", "amount")
    )
    assert prices == {"SEK": Decimal("999.00"), "EUR": Decimal("89.00"), "USD": Decimal("99.00")}
    assert Language.objects.get(is_default=True).code == "en"


def test_importing_the_same_catalog_twice_changes_and_announces_nothing(
    demo, received, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        first = catalog_import_run(data=demo)
    assert first.created > 0
    assert {name for name, _ in received} == {"stock_changed", "display_items_changed"}
    stamps = dict(Stock.objects.values_list("id", "updated_at"))
    received.clear()

    with django_capture_on_commit_callbacks(execute=True):
        second = catalog_import_run(data=demo)

    assert (second.created, second.updated, second.deleted) == (0, 0, 0)
    assert second.unchanged == first.created
    assert second.stock_changed_size_ids == frozenset()
    assert dict(Stock.objects.values_list("id", "updated_at")) == stamps
    assert received == []


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda variant: variant["prices"].update(SEK=1099.0), id="price"),
        pytest.param(
            lambda variant: variant["translations"]["sv"].update(name="Luvtröja svart"),
            id="translation",
        ),
    ],
)
def test_a_changed_price_or_translation_announces_exactly_that_display_item(
    demo, demo_imported, received, django_capture_on_commit_callbacks, change
):
    change(demo["products"][0]["variants"][1])  # display item 12367

    with django_capture_on_commit_callbacks(execute=True):
        result = catalog_import_run(data=demo)

    assert result.updated == 1
    assert received == [("display_items_changed", frozenset({12367}))]


def test_a_changed_product_announces_all_its_display_items(
    demo, demo_imported, received, django_capture_on_commit_callbacks
):
    demo["products"][0]["brand"] = "Acme Outdoor"

    with django_capture_on_commit_callbacks(execute=True):
        catalog_import_run(data=demo)

    assert received == [("display_items_changed", frozenset({12366, 12367}))]


def test_a_stock_change_goes_through_stock_set_and_announces_only_that_size(
    demo, demo_imported, received, django_capture_on_commit_callbacks
):
    demo["products"][1]["variants"][0]["sizes"][1]["stock"]["Stockholm"]["physical"] = 7

    with django_capture_on_commit_callbacks(execute=True):
        result = catalog_import_run(data=demo)

    assert result.stock_changed_size_ids == frozenset({23501})
    assert received == [("stock_changed", frozenset({23501}))]


def test_an_invalid_catalog_reports_every_problem_and_changes_nothing(
    demo, demo_imported, tmp_path
):
    demo["products"][0]["variants"][0]["prices"]["SEK"] = 1.0  # valid on its own, not written
    demo["products"][0]["variants"][1]["sizes"][0]["sku"] = "HD-1-BLK-M"
    demo["countries"][1]["market"] = "Narnia"
    demo["products"][2]["variants"][0]["sizes"][1]["stock"]["Stockholm"]["physical"] = -1
    before = _row_counts()
    stderr = StringIO()

    with pytest.raises(CommandError, match="catalog has 3 problems; nothing was changed"):
        call_command("import_catalog", _write(tmp_path, demo), "--no-progress", stderr=stderr)

    assert stderr.getvalue().splitlines() == [
        'countries[1].market: unknown market "Narnia"',
        "products[0].variants[1].sizes[0].sku: duplicate SKU HD-1-BLK-M "
        "(also at products[0].variants[0].sizes[1].sku)",
        "products[2].variants[0].sizes[1].stock.Stockholm.physical: must be an integer >= 0",
    ]
    assert _row_counts() == before
    assert Price.objects.get(display_item_id=12366, pricelist__name="SEK").amount == 999


def _product(demo: dict[str, Any]) -> dict[str, Any]:
    return demo["products"][0]


def _variant(demo: dict[str, Any]) -> dict[str, Any]:
    return demo["products"][0]["variants"][0]


def _size(demo: dict[str, Any]) -> dict[str, Any]:
    return demo["products"][0]["variants"][0]["sizes"][0]


SIZE = "products[0].variants[0].sizes[0]"


@pytest.mark.parametrize(
    ("mutate", "path", "message"),
    [
        pytest.param(lambda d: _size(d).pop("sku"), f"{SIZE}.sku", "is required", id="no-sku"),
        pytest.param(
            lambda d: _size(d).update(sku="HD-1-BLK-M"),
            "products[0].variants[0].sizes[1].sku",
            f"duplicate SKU HD-1-BLK-M (also at {SIZE}.sku)",
            id="duplicate-sku",
        ),
        pytest.param(
            lambda d: _size(d)["stock"].update(Paris={"physical": 1}),
            f"{SIZE}.stock.Paris",
            "unknown warehouse Paris",
            id="unknown-warehouse",
        ),
        pytest.param(
            lambda d: _size(d)["stock"]["Stockholm"].update(physical=-3),
            f"{SIZE}.stock.Stockholm.physical",
            "must be an integer >= 0",
            id="negative-physical",
        ),
        pytest.param(
            lambda d: _size(d)["stock"]["Stockholm"].update(allocated=1.5),
            f"{SIZE}.stock.Stockholm.allocated",
            "must be an integer >= 0",
            id="fractional-allocated",
        ),
        pytest.param(
            lambda d: _variant(d)["prices"].update(GBP=10),
            "products[0].variants[0].prices.GBP",
            "unknown pricelist GBP",
            id="unknown-pricelist",
        ),
        pytest.param(
            lambda d: _variant(d)["prices"].update({"": 10}),
            "products[0].variants[0].prices.",
            'unknown pricelist ""',
            id="empty-pricelist-key",
        ),
        pytest.param(
            lambda d: _variant(d)["prices"].update(SEK=9.999),
            "products[0].variants[0].prices.SEK",
            "at most 2 decimal places",
            id="price-fraction-of-a-cent",
        ),
        pytest.param(
            lambda d: _variant(d)["prices"].update(SEK="999"),
            "products[0].variants[0].prices.SEK",
            "must be a number >= 0",
            id="price-as-string",
        ),
        pytest.param(
            lambda d: _variant(d)["translations"].update(fi={"name": "Huppari"}),
            "products[0].variants[0].translations.fi",
            "unknown language fi",
            id="unknown-language",
        ),
        pytest.param(
            lambda d: d["countries"][0].update(code="S1"),
            "countries[0].code",
            "must be 2 letters",
            id="bad-country-code",
        ),
        pytest.param(
            lambda d: d["countries"][0].pop("pricelist"),
            "countries[0].pricelist",
            "is required when market is given",
            id="market-without-pricelist",
        ),
        pytest.param(
            lambda d: d["pricelists"][0].update(currency="kr"),
            "pricelists[0].currency",
            "must be 3 uppercase letters",
            id="bad-currency",
        ),
        pytest.param(
            lambda d: d["markets"][0].update(allocationRule="Baltics"),
            "markets[0].allocationRule",
            'unknown allocation rule "Baltics"',
            id="unknown-allocation-rule",
        ),
        pytest.param(
            lambda d: d["allocationRules"][0]["warehouses"].append("Oslo"),
            "allocationRules[0].warehouses[2]",
            'unknown warehouse "Oslo"',
            id="unknown-warehouse-in-rule",
        ),
        pytest.param(
            lambda d: _size(d).update(id="23399"),
            f"{SIZE}.id",
            "must be an integer",
            id="string-size-id",
        ),
        pytest.param(
            lambda d: _variant(d).update(displayItemId=12367),
            "products[0].variants[1].displayItemId",
            "duplicate display item id 12367 (also at products[0].variants[0].displayItemId)",
            id="duplicate-display-item-id",
        ),
        pytest.param(
            lambda d: _product(d).update(name=""),
            "products[0].name",
            "must not be empty",
            id="empty-product-name",
        ),
        pytest.param(
            lambda d: _variant(d).update(prics={}),
            "products[0].variants[0].prics",
            "unknown key",
            id="misspelt-key",
        ),
        pytest.param(
            lambda d: d.update(products={"id": 1}),
            "products",
            "must be a list",
            id="products-not-a-list",
        ),
        pytest.param(
            lambda d: d["languages"][1].update(default=True),
            "languages",
            'exactly one language must have "default": true',
            id="two-default-languages",
        ),
        pytest.param(
            lambda d: d["languages"][0].pop("default"),
            "languages",
            'exactly one language must have "default": true',
            id="no-default-language-anywhere",
        ),
    ],
)
def test_each_kind_of_invalid_value_is_reported_at_its_path(
    demo: dict[str, Any], mutate: Callable[[dict[str, Any]], object], path: str, message: str
):
    assert catalog_validate(data=demo) == []
    mutate(demo)

    problems = catalog_validate(data=demo)

    assert [problem.path for problem in problems] == [path]
    assert message in problems[0].message


def test_a_sku_of_another_size_in_the_database_is_refused(demo):
    SizeFactory(id=99, sku="HD-1-BLK-M")

    problems = [str(problem) for problem in catalog_validate(data=demo)]

    assert problems == [
        "products[0].variants[0].sizes[1].sku: SKU HD-1-BLK-M is already used by size 99 "
        "in the database"
    ]


def test_a_size_id_belonging_to_another_variant_in_the_database_is_refused(demo):
    other = SizeFactory(id=23400, sku="OTHER-1")

    problems = [str(problem) for problem in catalog_validate(data=demo)]

    assert problems == [
        f"products[0].variants[0].sizes[1].id: size 23400 belongs to variant {other.variant_id} "
        "in the database"
    ]


def test_a_file_without_a_default_language_keeps_the_database_default(demo, demo_imported):
    for language in demo["languages"]:
        language.pop("default", None)

    assert catalog_validate(data=demo) == []
    catalog_import_run(data=demo)

    assert Language.objects.get(is_default=True).code == "en"


def test_a_new_default_language_replaces_the_old_one(demo, demo_imported):
    demo["languages"][0].pop("default")
    demo["languages"][1]["default"] = True

    catalog_import_run(data=demo)

    assert list(Language.objects.filter(is_default=True).values_list("code", flat=True)) == ["sv"]


def test_an_allocation_rule_gets_exactly_the_files_warehouses(demo, demo_imported):
    demo["allocationRules"][0]["warehouses"] = ["Berlin"]

    result = catalog_import_run(data=demo)

    rule = AllocationRule.objects.get(name="Nordics")
    assert list(rule.rule_warehouses.values_list("warehouse__name", "position")) == [("Berlin", 0)]
    assert result.counts["AllocationRuleWarehouse"].deleted == 1


def test_rows_absent_from_the_file_are_kept(demo, demo_imported):
    demo["products"] = demo["products"][:1]
    demo["products"][0]["variants"][0]["published"] = False

    catalog_import_run(data=demo)

    assert Product.objects.count() == 3
    assert DisplayItem.objects.get(id=12366).published is False
    assert DisplayItem.objects.get(id=12400).published is True


def test_a_file_with_only_products_may_refer_to_rows_in_the_database(tmp_path):
    WarehouseFactory(name="Main")
    PricelistFactory(name="EUR", currency="EUR")
    LanguageFactory(code="de", is_default=True)
    catalog = {
        "products": [
            {
                "id": 1,
                "name": "Scarf",
                "variants": [
                    {
                        "id": 2,
                        "name": "Red",
                        "displayItemId": 3,
                        "uri": "scarf-red",
                        "translations": {"de": {"name": "Schal"}},
                        "prices": {"EUR": 19.5},
                        "sizes": [
                            {
                                "id": 4,
                                "name": "One",
                                "sku": "SC-R",
                                "stock": {"Main": {"physical": 6}},
                            }
                        ],
                    }
                ],
            }
        ]
    }
    stdout = StringIO()

    call_command("import_catalog", _write(tmp_path, catalog), "--no-progress", stdout=stdout)

    assert stdout.getvalue().strip().splitlines() == [
        "created 6, updated 0, unchanged 0 rows; live stock changed for 1 size",
        "  live stock changed: SC-R",
    ]
    assert Stock.objects.get(size_id=4, warehouse__name="Main").physical == 6
    assert Price.objects.get(display_item_id=3).amount == Decimal("19.50")
    assert DisplayItemTranslation.objects.get(display_item_id=3).name == "Schal"
    assert DisplayItem.objects.get(id=3).published is True


def test_the_command_lists_counts_per_model_at_verbosity_2(tmp_path, demo):
    stdout = StringIO()

    call_command(
        "import_catalog", _write(tmp_path, demo), "--no-progress", verbosity=2, stdout=stdout
    )

    assert "  Size: created 11, updated 0, unchanged 0" in stdout.getvalue().splitlines()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param('{"products": [', "is not valid JSON", id="malformed"),
        pytest.param("[]", "catalog has 1 problem; nothing was changed", id="top-level-list"),
    ],
)
def test_a_file_that_is_not_a_json_object_is_refused_and_changes_nothing(
    tmp_path, content, message
):
    path = tmp_path / "catalog.json"
    path.write_text(content, encoding="utf-8")
    stderr = StringIO()

    with pytest.raises(CommandError, match=message):
        call_command("import_catalog", path, "--no-progress", stderr=stderr)

    assert _row_counts() == dict.fromkeys(_row_counts(), 0)


def test_the_top_level_problem_says_what_the_document_is(tmp_path):
    path = _write(tmp_path, [])
    stderr = StringIO()

    with pytest.raises(CommandError):
        call_command("import_catalog", path, "--no-progress", stderr=stderr)

    assert stderr.getvalue().strip() == "the catalog must be a JSON object, not a list"


def test_the_service_raises_catalog_invalid_with_the_problems(demo):
    broken = copy.deepcopy(demo)
    broken["warehouses"].append({"name": "Berlin"})

    with pytest.raises(CatalogInvalid) as raised:
        catalog_import_run(data=broken)

    assert [str(problem) for problem in raised.value.problems] == [
        "warehouses[4].name: duplicate warehouse Berlin (also at warehouses[1].name)"
    ]
    assert Product.objects.count() == 0


def _with_australia(demo: dict[str, Any], *state_codes: str) -> dict[str, Any]:
    demo["countries"].append(
        {
            "code": "au",
            "name": "Australia",
            "market": "USA",
            "pricelist": "USD",
            "language": "en",
            "states": [{"code": code, "name": f"State {code}"} for code in state_codes],
        }
    )
    return demo


def test_country_and_state_codes_in_any_case_are_stored_upper_case(demo):
    catalog_import_run(data=_with_australia(demo, "Qld", "nsw"))

    australia = Country.objects.get(code="AU")
    assert sorted(australia.states.values_list("code", flat=True)) == ["NSW", "QLD"]


@pytest.mark.parametrize("spelling", ["qld", "QLD", "Qld"])
def test_every_spelling_of_an_imported_state_subscribes_to_its_upper_case_virtual_item(
    demo, api_client, back_in_stock_on, spelling
):
    catalog_import_run(data=_with_australia(demo, "Qld", "nsw"))

    response = api_client.post(
        "/api/checkout-api/back-in-stock-subscription",
        {
            "item": "12366-23400",
            "shipTo": {"country": "au", "state": spelling},
            "email": "ann@example.com",
        },
        format="json",
    )

    assert response.status_code == 201, response.json()
    assert BackInStockVariant.objects.get().external_id == "12366_AU_QLD_23400"


def test_state_codes_that_differ_only_by_case_are_duplicates_at_their_path(demo):
    problems = catalog_validate(data=_with_australia(demo, "QLD", "Qld"))

    assert [(p.path, p.message) for p in problems] == [
        (
            "countries[4].states[1].code",
            "duplicate state QLD (also at countries[4].states[0].code)",
        )
    ]


def test_a_country_code_differing_only_by_case_from_another_is_a_duplicate(demo):
    demo["countries"][1]["code"] = "se"

    problems = catalog_validate(data=demo)

    assert [p.path for p in problems] == ["countries[1].code"]
    assert "duplicate country SE" in problems[0].message


def test_the_data_migration_upper_cases_codes_and_drops_unreachable_case_duplicates(demo):
    from django.apps import apps
    from django.db import connection

    from shop.models import State

    migration = importlib.import_module("shop.migrations.0002_location_codes_upper_case")
    catalog_import_run(data=_with_australia(demo, "QLD"))
    australia = Country.objects.get(code="AU")
    with connection.cursor() as cursor:  # as rows were stored before codes had one form
        cursor.execute("UPDATE shop_country SET code = 'au' WHERE id = %s", [australia.id])
        cursor.execute(
            "INSERT INTO shop_state (country_id, code, name) VALUES (%s, 'Qld', 'Old'), "
            "(%s, 'nsw', 'New South Wales')",
            [australia.id, australia.id],
        )

    migration.codes_upper_case(apps, None)

    with connection.cursor() as cursor:
        cursor.execute("SELECT code FROM shop_country WHERE id = %s", [australia.id])
        assert cursor.fetchone() == ("AU",)
    assert sorted(State.objects.filter(country=australia).values_list("code", "name")) == [
        ("NSW", "New South Wales"),
        ("QLD", "State QLD"),
    ]


@pytest.mark.parametrize(
    "image",
    ["javascript:alert(1)", "data:image/png;base64,AAAA", "//cdn.example.com/a.jpg", "a.jpg"],
)
def test_an_image_url_that_is_not_http_is_refused_at_its_path(demo, image):
    _variant(demo)["images"][0] = image

    problems = catalog_validate(data=demo)

    assert [(p.path, p.message) for p in problems] == [
        ("products[0].variants[0].images[0]", "must be an absolute http:// or https:// URL")
    ]


def test_the_command_names_the_sizes_whose_live_stock_changed(tmp_path, demo):
    call_command("import_catalog", _write(tmp_path, demo), "--no-progress", stdout=StringIO())
    product = demo["products"][0]["variants"][0]["sizes"][0]
    product["stock"] = {name: {"physical": 99} for name in product["stock"]}
    stdout = StringIO()

    call_command("import_catalog", _write(tmp_path, demo), "--no-progress", stdout=stdout)

    assert stdout.getvalue().splitlines()[-1] == f"  live stock changed: {product['sku']}"


def test_the_command_says_nothing_of_stock_when_no_figure_changed(tmp_path, demo):
    call_command("import_catalog", _write(tmp_path, demo), "--no-progress", stdout=StringIO())
    stdout = StringIO()

    call_command("import_catalog", _write(tmp_path, demo), "--no-progress", stdout=stdout)

    assert stdout.getvalue().strip().endswith("live stock changed for 0 sizes")
