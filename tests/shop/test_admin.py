from decimal import Decimal
from typing import Any

import pytest
from django import forms
from django.contrib import admin
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.html import escape

from shop.hooks import allocation_changed, display_items_changed, stock_changed
from shop.models import AllocationRule, Country, DisplayItemTranslation, Stock
from tests.factories import (
    AllocationRuleFactory,
    CountryFactory,
    DisplayItemFactory,
    LanguageFactory,
    MarketFactory,
    PriceFactory,
    ProductFactory,
    SizeFactory,
    StateFactory,
    StockFactory,
    VariantFactory,
    WarehouseFactory,
)

SHOP_MODELS = sorted(
    (model for model in admin.site._registry if model._meta.app_label == "shop"),
    key=lambda model: model.__name__,
)


def _url(model: Any, view: str, *args: Any) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def _unchanged_form_data(response) -> dict[str, Any]:
    """What a browser posts back from an admin change page when nothing is edited."""
    page_forms = [response.context["adminform"].form]
    for inline in response.context["inline_admin_formsets"]:
        page_forms += [inline.formset.management_form, *inline.formset.forms]
    data: dict[str, Any] = {}
    for form in page_forms:
        for name, field in form.fields.items():
            value = form[name].value()
            if field.disabled or value is None:
                continue  # browsers do not send disabled inputs
            if isinstance(field.widget, forms.CheckboxInput):
                if value:
                    data[form.add_prefix(name)] = "on"
            else:
                data[form.add_prefix(name)] = value
            if field.show_hidden_initial:  # e.g. fields with a callable default
                data[form.add_initial_prefix(name)] = value
    return data


@pytest.fixture
def stock_announcements():
    """The ``size_ids`` of every ``stock_changed`` sent during the test."""
    received: list[frozenset[int]] = []

    def receiver(sender, size_ids, **kwargs):
        received.append(size_ids)

    stock_changed.connect(receiver, weak=False)
    yield received
    stock_changed.disconnect(receiver)


@pytest.fixture
def display_item_announcements():
    """The ``display_item_ids`` of every ``display_items_changed`` sent during the test."""
    received: list[frozenset[int]] = []

    def receiver(sender, display_item_ids, **kwargs):
        received.append(display_item_ids)

    display_items_changed.connect(receiver, weak=False)
    yield received
    display_items_changed.disconnect(receiver)


@pytest.fixture
def allocation_announcements():
    """How many times ``allocation_changed`` was sent during the test."""
    received: list[None] = []

    def receiver(sender, **kwargs):
        received.append(None)

    allocation_changed.connect(receiver, weak=False)
    yield received
    allocation_changed.disconnect(receiver)


@pytest.fixture
def stockholm(db):
    return WarehouseFactory(name="Stockholm")


@pytest.fixture
def new_jersey(db):
    return WarehouseFactory(name="New Jersey")


@pytest.fixture
def shop_records(stockholm):
    """One record of every shop model, all connected."""
    english = LanguageFactory(code="en", name="English", is_default=True)
    rule = AllocationRuleFactory(name="EU", warehouses=[stockholm])
    sweden = CountryFactory(
        code="SE",
        name="Sweden",
        language=english,
        market=MarketFactory(name="Sweden", allocation_rule=rule),
    )
    StateFactory(country=sweden, code="AB", name="Stockholms län")
    size = SizeFactory(sku="HD-1-BLK-M", ean="7350000000017")
    display_item = size.variant.display_item
    DisplayItemTranslation.objects.create(
        display_item=display_item, language=english, name="Hoodie"
    )
    PriceFactory(display_item=display_item, pricelist=sweden.pricelist, amount=Decimal("999"))
    StockFactory(size=size, warehouse=stockholm, physical=5, allocated=1)
    return size


def test_every_shop_model_with_a_page_of_its_own_is_registered():
    assert {model.__name__ for model in SHOP_MODELS} == {
        "AllocationRule",
        "Country",
        "DisplayItem",
        "Language",
        "Market",
        "Pricelist",
        "Product",
        "Size",
        "State",
        "Stock",
        "Variant",
        "Warehouse",
    }


@pytest.mark.parametrize("model", SHOP_MODELS, ids=lambda model: model.__name__)
def test_the_changelist_links_to_the_model_s_records(admin_client, shop_records, model):
    record = model.objects.first()

    response = admin_client.get(_url(model, "changelist"))

    assert response.status_code == 200
    assert _url(model, "change", record.pk) in response.content.decode()


@pytest.mark.parametrize("model", SHOP_MODELS, ids=lambda model: model.__name__)
def test_the_change_page_shows_the_record(admin_client, shop_records, model):
    record = model.objects.first()

    response = admin_client.get(_url(model, "change", record.pk))

    assert response.status_code == 200
    assert escape(str(record)) in response.content.decode()


@pytest.mark.parametrize("model", SHOP_MODELS, ids=lambda model: model.__name__)
def test_the_add_page_opens(admin_client, shop_records, model):
    response = admin_client.get(_url(model, "add"))

    assert response.status_code == 200
    assert b'name="_save"' in response.content


@pytest.mark.parametrize(
    ("model_name", "term", "expected"),
    [
        ("size", "HD-1-BLK-M", "HD-1-BLK-M"),
        ("size", "7350000000017", "HD-1-BLK-M"),
        ("displayitem", "Hoodie", "HD-1-BLK-M"),
        ("displayitem", "12366", "HD-1-BLK-M"),
        ("product", "P-77", "HD-1-BLK-M"),
    ],
)
def test_the_changelist_search_finds_exactly_the_matching_record(
    admin_client, db, model_name, term, expected
):
    hoodie = DisplayItemFactory(
        id=12366, variant=VariantFactory(product=ProductFactory(name="Hoodie", number="P-77"))
    )
    SizeFactory(variant=hoodie.variant, sku="HD-1-BLK-M", ean="7350000000017")
    other = DisplayItemFactory(
        id=123660, uri="tee-white", variant=VariantFactory(product=ProductFactory(name="Tee"))
    )
    SizeFactory(variant=other.variant, sku="TE-1-WHT-S", ean="7350000000024")

    response = admin_client.get(reverse(f"admin:shop_{model_name}_changelist"), {"q": term})

    results = list(response.context["cl"].result_list)
    assert len(results) == 1
    found = results[0]
    skus = {
        "size": lambda: [found.sku],
        "displayitem": lambda: [size.sku for size in found.variant.sizes.all()],
        "product": lambda: [size.sku for v in found.variants.all() for size in v.sizes.all()],
    }[model_name]()
    assert skus == [expected]


# --- Stock goes through stock_set -----------------------------------------------------------------


def test_saving_stock_in_the_size_page_announces_the_size(
    admin_client, shop_records, stock_announcements, django_capture_on_commit_callbacks
):
    size = shop_records
    url = _url(size, "change", size.pk)
    data = _unchanged_form_data(admin_client.get(url))
    data["stock-0-physical"] = 12

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(url, data)

    assert response.status_code == 302
    assert stock_announcements == [frozenset({size.id})]
    assert Stock.objects.get(size=size).physical == 12


def test_saving_the_size_page_with_unchanged_stock_announces_nothing(
    admin_client, shop_records, stock_announcements, django_capture_on_commit_callbacks
):
    size = shop_records
    url = _url(size, "change", size.pk)
    data = _unchanged_form_data(admin_client.get(url))

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(url, data)

    assert response.status_code == 302
    assert stock_announcements == []


def test_adding_a_warehouse_row_in_the_size_page_writes_it_through_stock_set(
    admin_client,
    shop_records,
    new_jersey,
    stock_announcements,
    django_capture_on_commit_callbacks,
):
    size = shop_records
    url = _url(size, "change", size.pk)
    data = _unchanged_form_data(admin_client.get(url))
    data |= {
        "stock-TOTAL_FORMS": 2,
        "stock-1-size": size.pk,
        "stock-1-warehouse": new_jersey.pk,
        "stock-1-physical": 7,
        "stock-1-allocated": 2,
    }

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(url, data)

    assert response.status_code == 302
    assert stock_announcements == [frozenset({size.id})]
    added = Stock.objects.get(size=size, warehouse=new_jersey)
    assert (added.physical, added.allocated) == (7, 2)


def test_saving_the_stock_page_announces_the_size(
    admin_client, shop_records, stock_announcements, django_capture_on_commit_callbacks
):
    stock = Stock.objects.get(size=shop_records)
    url = _url(Stock, "change", stock.pk)
    data = _unchanged_form_data(admin_client.get(url))
    data["allocated"] = 4

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(url, data)

    assert response.status_code == 302
    assert stock_announcements == [frozenset({shop_records.id})]
    stock.refresh_from_db()
    assert (stock.physical, stock.allocated) == (5, 4)


def test_adding_stock_on_the_stock_page_announces_the_size(
    admin_client,
    shop_records,
    new_jersey,
    stock_announcements,
    django_capture_on_commit_callbacks,
):
    size = shop_records
    data = {"size": size.pk, "warehouse": new_jersey.pk, "physical": 3, "allocated": 0}

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(_url(Stock, "add"), data)

    assert response.status_code == 302
    assert stock_announcements == [frozenset({size.id})]
    assert Stock.objects.get(size=size, warehouse=new_jersey).physical == 3


def test_stock_rows_cannot_be_deleted_in_the_admin(admin_client, shop_records):
    stock = Stock.objects.get(size=shop_records)

    response = admin_client.post(_url(Stock, "delete", stock.pk), {"post": "yes"})

    assert response.status_code == 403
    assert Stock.objects.filter(pk=stock.pk).exists()


# --- Display items announce -----------------------------------------------------------------------


def test_saving_a_display_item_announces_it(
    admin_client, shop_records, display_item_announcements, django_capture_on_commit_callbacks
):
    display_item = shop_records.variant.display_item
    url = _url(display_item, "change", display_item.pk)
    data = _unchanged_form_data(admin_client.get(url))
    data["uri"] = "hoodie-black-new"

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(url, data)

    assert response.status_code == 302
    assert display_item_announcements == [frozenset({display_item.id})]
    display_item.refresh_from_db()
    assert display_item.uri == "hoodie-black-new"


def test_changing_only_a_price_of_a_display_item_announces_it(
    admin_client, shop_records, display_item_announcements, django_capture_on_commit_callbacks
):
    display_item = shop_records.variant.display_item
    url = _url(display_item, "change", display_item.pk)
    data = _unchanged_form_data(admin_client.get(url))
    data["prices-0-amount"] = "899.00"

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(url, data)

    assert response.status_code == 302
    assert display_item_announcements == [frozenset({display_item.id})]
    assert display_item.prices.get().amount == Decimal("899.00")


def test_saving_a_product_announces_the_display_items_of_all_its_variants(
    admin_client, db, display_item_announcements, django_capture_on_commit_callbacks
):
    product = ProductFactory(name="Hoodie")
    black = DisplayItemFactory(variant=VariantFactory(product=product, name="Black"))
    red = DisplayItemFactory(variant=VariantFactory(product=product, name="Red"))
    DisplayItemFactory()  # another product's
    url = _url(product, "change", product.pk)
    data = _unchanged_form_data(admin_client.get(url))
    data["name"] = "Heavy hoodie"

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(url, data)

    assert response.status_code == 302
    assert display_item_announcements == [frozenset({black.id, red.id})]


def test_saving_a_display_item_unchanged_announces_nothing(
    admin_client, shop_records, display_item_announcements, django_capture_on_commit_callbacks
):
    display_item = shop_records.variant.display_item
    url = _url(display_item, "change", display_item.pk)
    data = _unchanged_form_data(admin_client.get(url))

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(url, data)

    assert response.status_code == 302
    assert display_item_announcements == []


# --- Allocation changes announce ------------------------------------------------------------------


def test_moving_a_country_to_another_market_announces_an_allocation_change(
    admin_client, shop_records, allocation_announcements, django_capture_on_commit_callbacks
):
    sweden = Country.objects.get(code="SE")
    other_market = MarketFactory(name="Nordics")
    url = _url(sweden, "change", sweden.pk)
    data = _unchanged_form_data(admin_client.get(url))
    data["market"] = other_market.pk

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(url, data)

    assert response.status_code == 302
    assert allocation_announcements == [None]


def test_renaming_a_country_announces_no_allocation_change(
    admin_client, shop_records, allocation_announcements, django_capture_on_commit_callbacks
):
    sweden = Country.objects.get(code="SE")
    url = _url(sweden, "change", sweden.pk)
    data = _unchanged_form_data(admin_client.get(url))
    data["name"] = "Konungariket Sverige"

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(url, data)

    assert response.status_code == 302
    assert allocation_announcements == []


def test_adding_a_warehouse_to_an_allocation_rule_announces_an_allocation_change(
    admin_client,
    shop_records,
    new_jersey,
    allocation_announcements,
    django_capture_on_commit_callbacks,
):
    rule = AllocationRule.objects.get(name="EU")
    url = _url(rule, "change", rule.pk)
    data = _unchanged_form_data(admin_client.get(url))
    data |= {
        "rule_warehouses-TOTAL_FORMS": 2,
        "rule_warehouses-1-allocation_rule": rule.pk,
        "rule_warehouses-1-warehouse": new_jersey.pk,
        "rule_warehouses-1-position": 1,
    }

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(url, data)

    assert response.status_code == 302
    assert allocation_announcements == [None]
    assert list(rule.rule_warehouses.values_list("warehouse__name", flat=True)) == [
        "Stockholm",
        "New Jersey",
    ]


# --- The display item page's availability table ---------------------------------------------------


@pytest.fixture
def two_ship_to_countries(stockholm, new_jersey):
    """Sweden served by Stockholm; the US by New Jersey and Stockholm."""
    for code, warehouses in (("SE", [stockholm]), ("US", [new_jersey, stockholm])):
        rule = AllocationRuleFactory(warehouses=warehouses)
        CountryFactory(code=code, market=MarketFactory(allocation_rule=rule))
    CountryFactory(code="NO", market=None, pricelist=None, is_ship_to=False)


def test_the_display_item_page_shows_each_size_s_availability_per_ship_to_country(
    admin_client, two_ship_to_countries, stockholm, new_jersey
):
    size = SizeFactory(sku="HD-1-BLK-M", ean="7350000000017")
    StockFactory(size=size, warehouse=stockholm, physical=3, allocated=1)
    StockFactory(size=size, warehouse=new_jersey, physical=40, allocated=0)
    display_item = size.variant.display_item

    response = admin_client.get(_url(display_item, "change", display_item.pk))

    html = response.content.decode()
    assert '<th title="Country SE">SE</th><th title="Country US">US</th></tr>' in html
    assert "<td>HD-1-BLK-M</td><td>7350000000017</td><td>2</td><td>42</td></tr>" in html
    assert ">NO</th>" not in html


def test_the_display_item_page_s_queries_do_not_grow_with_its_sizes(
    admin_client, two_ship_to_countries, stockholm
):
    def queries_for_page_with(size_count: int) -> int:
        display_item = DisplayItemFactory()
        for _ in range(size_count):
            StockFactory(size=SizeFactory(variant=display_item.variant), warehouse=stockholm)
        with CaptureQueriesContext(connection) as queries:
            response = admin_client.get(_url(display_item, "change", display_item.pk))
        assert response.status_code == 200
        return len(queries)

    assert queries_for_page_with(1) == queries_for_page_with(6)


@pytest.mark.parametrize("figure", [2**31, 2**63, -1])
def test_a_stock_figure_outside_the_columns_range_is_a_form_error_in_the_admin(
    admin_client, shop_records, new_jersey, figure
):
    data = {"size": shop_records.pk, "warehouse": new_jersey.pk, "physical": figure}

    response = admin_client.post(_url(Stock, "add"), {**data, "allocated": 0})

    assert response.status_code == 200  # the form again, with the error on physical
    assert response.context["adminform"].form.errors["physical"]
    assert not Stock.objects.filter(warehouse=new_jersey).exists()


def test_a_country_code_in_any_case_is_saved_upper_case_from_the_admin(admin_client, db):
    form = {
        "code": "au",
        "name": "Australia",
        "states-TOTAL_FORMS": "1",
        "states-INITIAL_FORMS": "0",
        "states-0-code": "qld",
        "states-0-name": "Queensland",
    }

    response = admin_client.post(_url(Country, "add"), form)

    assert response.status_code == 302, response.context["adminform"].form.errors
    assert list(Country.objects.get(code="AU").states.values_list("code", flat=True)) == ["QLD"]


def test_a_display_item_s_images_are_edited_as_a_list_of_urls_one_a_line(db):
    from shop.admin import DisplayItemForm
    from tests.factories import DisplayItemFactory

    item = DisplayItemFactory(images=["https://cdn.example.com/a.jpg"])
    shown = DisplayItemForm(instance=item)["images"].value()

    form = DisplayItemForm(
        instance=item,
        data={
            "id": item.id,
            "variant": item.variant_id,
            "uri": item.uri,
            "published": "on",
            "description": "",
            "images": "https://cdn.example.com/a.jpg\n\n  https://cdn.example.com/b.jpg  \n",
        },
    )

    assert form.fields["images"].prepare_value(shown) == "https://cdn.example.com/a.jpg"
    assert form.is_valid(), form.errors
    assert form.cleaned_data["images"] == [
        "https://cdn.example.com/a.jpg",
        "https://cdn.example.com/b.jpg",
    ]


def test_an_image_that_is_not_a_url_is_refused(db):
    from shop.admin import DisplayItemForm
    from tests.factories import DisplayItemFactory

    item = DisplayItemFactory()
    form = DisplayItemForm(
        instance=item,
        data={"id": item.id, "variant": item.variant_id, "uri": item.uri, "images": "not a url"},
    )

    assert not form.is_valid()
    assert "images" in form.errors
