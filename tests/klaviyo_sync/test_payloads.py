"""Payload builders: pure functions from domain data to Klaviyo bodies (CONTRACT §8)."""

import json
from decimal import Decimal

import pytest

from klaviyo_sync.payloads import (
    BackInStockItemData,
    BackInStockVariantData,
    CatalogItemData,
    LocalizedText,
    back_in_stock_item_attributes,
    back_in_stock_subscription_body,
    back_in_stock_variant_attributes,
    bulk_job_body,
    catalog_item_attributes,
    catalog_item_create_resource,
    catalog_variant_create_resource,
    inventory_quantity_for,
    job_batches,
    payload_hash,
    profile_properties_body,
    variant_stock_update_resource,
)

HOODIE = CatalogItemData(
    display_item_id=12366,
    published=True,
    product_name=LocalizedText("Hoodie", {"en": "Hoodie", "sv": "Luvtröja"}),
    variant_name=LocalizedText("Black"),
    description=LocalizedText("Heavy cotton hoodie.", {"sv": "Tjock bomull."}),
    url=LocalizedText(
        "https://shop.example.com/p/hoodie-black",
        {"sv": "https://shop.example.com/p/luvtroja-svart"},
    ),
    images=["https://cdn.example.com/a.jpg", "https://cdn.example.com/b.jpg"],
    price=Decimal("99.00"),
    prices_by_currency={"SEK": Decimal("999.00"), "USD": Decimal("99.00")},
    brand="Acme",
    collection="SS27",
    product_type="Hoodies",
)

VARIANT = BackInStockVariantData(
    external_id="12366_SE_00_23400",
    item_external_id="12366_SE_00",
    product_name="Hoodie",
    size_name="M",
    sku="HD-1-BLK-M",
    description="Heavy cotton hoodie.",
    url="https://shop.example.com/p/hoodie-black",
    images=["https://cdn.example.com/a.jpg"],
    price=Decimal("999.00"),
    inventory_quantity=12,
)


def test_a_catalog_item_carries_the_contracts_custom_metadata():
    attributes = catalog_item_attributes(HOODIE)
    metadata = attributes["custom_metadata"]

    assert attributes["title"] == "Hoodie"
    assert attributes["url"] == "https://shop.example.com/p/hoodie-black"
    assert attributes["price"] == 99.0
    assert attributes["image_full_url"] == "https://cdn.example.com/a.jpg"
    assert json.loads(metadata["ProductName"]) == {
        "default": "Hoodie",
        "en": "Hoodie",
        "sv": "Luvtröja",
    }
    assert json.loads(metadata["VariantName"]) == {"default": "Black"}
    assert json.loads(metadata["ProductUrl"])["sv"] == "https://shop.example.com/p/luvtroja-svart"
    assert json.loads(metadata["Price"]) == {"SEK": 999.0, "USD": 99.0}
    assert (metadata["Brand"], metadata["Collection"], metadata["ProductType"]) == (
        "Acme",
        "SS27",
        "Hoodies",
    )
    assert all(isinstance(value, str) for value in metadata.values()), "metadata must be flat"


def test_a_create_resource_names_the_item_and_its_categories():
    resource = catalog_item_create_resource(
        external_id="12366_SE_00", attributes={"title": "x"}, category_ids=["backinstock"]
    )

    assert resource["attributes"]["external_id"] == "12366_SE_00"
    assert resource["relationships"]["categories"]["data"] == [
        {"type": "catalog-category", "id": "$custom:::$default:::backinstock"}
    ]


def test_the_back_in_stock_item_and_variant_are_marked_and_hidden_from_feeds():
    item = BackInStockItemData(
        external_id="12366_SE_00",
        product_name="Hoodie",
        description="d",
        url="u",
        images=[],
        price=Decimal("999"),
    )
    item_attributes = back_in_stock_item_attributes(item)
    variant_attributes = back_in_stock_variant_attributes(VARIANT)
    create = catalog_variant_create_resource(variant=VARIANT, attributes=variant_attributes)

    assert item_attributes["title"] == "Hoodie - [DO NOT USE][Back in stock automation]"
    assert item_attributes["price"] == 999.0
    assert "M" in variant_attributes["title"]
    assert variant_attributes["inventory_policy"] == 1
    assert variant_attributes["sku"] == "HD-1-BLK-M"
    assert "inventory_quantity" not in variant_attributes
    assert create["attributes"]["inventory_quantity"] == 12
    assert create["relationships"]["item"]["data"]["id"] == "$custom:::$default:::12366_SE_00"


def test_a_stock_update_carries_only_the_figure_and_no_relationships():
    resource = variant_stock_update_resource(external_id="12366_SE_00_23400", inventory_quantity=0)

    assert resource == {
        "type": "catalog-variant",
        "id": "$custom:::$default:::12366_SE_00_23400",
        "attributes": {"inventory_quantity": 0},
    }


@pytest.mark.parametrize(
    ("availability", "minimum", "expected"),
    [(0, 10, 0), (9, 10, 0), (10, 10, 10), (25, 10, 25), (3, 0, 3), (0, 0, 0)],
)
def test_the_inventory_rule_sends_zero_below_the_minimum(availability, minimum, expected):
    assert (
        inventory_quantity_for(availability=availability, minimum_stock_level=minimum) == expected
    )


def test_the_subscription_body_is_klaviyos_server_shape():
    assert back_in_stock_subscription_body(
        email="ann@example.com", variant_external_id="12366_SE_00_23400"
    ) == {
        "data": {
            "type": "back-in-stock-subscription",
            "attributes": {
                "channels": ["EMAIL"],
                "profile": {
                    "data": {"type": "profile", "attributes": {"email": "ann@example.com"}}
                },
            },
            "relationships": {
                "variant": {
                    "data": {
                        "type": "catalog-variant",
                        "id": "$custom:::$default:::12366_SE_00_23400",
                    }
                }
            },
        }
    }


def test_profile_properties_carry_language_currency_and_a_locale():
    body = profile_properties_body(
        email="ann@example.com", language="sv", currency="SEK", country_code="SE"
    )
    assert body["data"]["attributes"]["properties"] == {"Language": "sv", "Currency": "SEK"}
    assert body["data"]["attributes"]["locale"] == "sv-SE"


def test_jobs_hold_at_most_100_resources_and_5_mb():
    small = [{"type": "catalog-item", "id": str(i)} for i in range(250)]
    large = [{"type": "catalog-item", "attributes": {"d": "x" * 200_000}} for _ in range(60)]

    assert [len(batch) for batch in job_batches(small)] == [100, 100, 50]
    large_batches = job_batches(large)
    assert sum(len(b) for b in large_batches) == 60
    for batch in large_batches:
        body = bulk_job_body(kind="item", operation="create", resources=batch)
        assert len(json.dumps(body).encode()) <= 5 * 1024 * 1024


def test_the_hash_changes_with_the_content_and_not_with_key_order():
    assert payload_hash({"a": 1, "b": 2}) == payload_hash({"b": 2, "a": 1})
    assert payload_hash({"a": 1}) != payload_hash({"a": 2})
