"""Contract: every body the project builds is one Klaviyo's published schemas accept.

Checked against the OpenAPI spec in ../shared/klaviyo/ (or ``KLAVIYO_OPENAPI_SPEC``) with the
sandbox's validator, plus the sandbox's structural checks (at most 100 resources a job, no
relationships on variant updates) that the spec alone does not express.
"""

from decimal import Decimal

import pytest

from klaviyo_sandbox import default_spec_path
from klaviyo_sandbox.errors import ApiError
from klaviyo_sandbox.schema import spec_validator
from klaviyo_sync.payloads import (
    BackInStockItemData,
    BackInStockVariantData,
    CatalogItemData,
    LocalizedText,
    back_in_stock_category_create_resource,
    back_in_stock_item_attributes,
    back_in_stock_subscription_body,
    back_in_stock_variant_attributes,
    bulk_job_body,
    catalog_item_attributes,
    catalog_item_create_resource,
    catalog_item_update_resource,
    catalog_variant_create_resource,
    catalog_variant_update_resource,
    profile_deletion_body,
    profile_properties_body,
    single_body,
    unpublished_item_attributes,
    variant_stock_update_resource,
)

SPEC = default_spec_path()
pytestmark = pytest.mark.skipif(
    SPEC is None, reason="Klaviyo's OpenAPI spec is not beside the project"
)

ITEM = CatalogItemData(
    display_item_id=12366,
    published=True,
    product_name=LocalizedText("Hoodie", {"sv": "Luvtröja"}),
    variant_name=LocalizedText("Black"),
    description=LocalizedText(""),
    url=LocalizedText("https://shop.example.com/p/hoodie-black"),
    images=[],
    price=None,
    prices_by_currency={"SEK": Decimal("999")},
    brand="",
    collection="",
    product_type="",
)
BIS_ITEM = BackInStockItemData(
    external_id="12366_US_NY",
    product_name="Hoodie",
    description="d",
    url="u",
    images=["https://cdn.example.com/a.jpg"],
    price=Decimal("99"),
)
BIS_VARIANT = BackInStockVariantData(
    external_id="12366_US_NY_23400",
    item_external_id="12366_US_NY",
    product_name="Hoodie",
    size_name="M",
    sku="HD-1-BLK-M",
    description="d",
    url="u",
    images=[],
    price=None,
    inventory_quantity=0,
)


def bodies():
    item_attributes = catalog_item_attributes(ITEM)
    variant_attributes = back_in_stock_variant_attributes(BIS_VARIANT)
    item_create = catalog_item_create_resource(
        external_id="12366", attributes=item_attributes, category_ids=["backinstock"]
    )
    item_update = catalog_item_update_resource(external_id="12366", attributes=item_attributes)
    variant_create = catalog_variant_create_resource(
        variant=BIS_VARIANT, attributes=variant_attributes
    )
    variant_update = catalog_variant_update_resource(
        external_id=BIS_VARIANT.external_id, attributes=variant_attributes
    )
    return {
        "item bulk create": (
            "/api/catalog-item-bulk-create-jobs",
            bulk_job_body(kind="item", operation="create", resources=[item_create] * 100),
        ),
        "item bulk update": (
            "/api/catalog-item-bulk-update-jobs",
            bulk_job_body(kind="item", operation="update", resources=[item_update]),
        ),
        "item bulk unpublish": (
            "/api/catalog-item-bulk-update-jobs",
            bulk_job_body(
                kind="item",
                operation="update",
                resources=[
                    catalog_item_update_resource(
                        external_id="1", attributes=unpublished_item_attributes()
                    )
                ],
            ),
        ),
        "variant bulk stock update": (
            "/api/catalog-variant-bulk-update-jobs",
            bulk_job_body(
                kind="variant",
                operation="update",
                resources=[variant_stock_update_resource(external_id="x", inventory_quantity=3)],
            ),
        ),
        "category create": (
            "/api/catalog-categories",
            single_body(back_in_stock_category_create_resource()),
        ),
        "back-in-stock item create": (
            "/api/catalog-items",
            single_body(
                catalog_item_create_resource(
                    external_id=BIS_ITEM.external_id,
                    attributes=back_in_stock_item_attributes(BIS_ITEM),
                    category_ids=["backinstock"],
                )
            ),
        ),
        "back-in-stock item update": (
            "/api/catalog-items/$custom:::$default:::12366_US_NY",
            single_body(
                catalog_item_update_resource(
                    external_id=BIS_ITEM.external_id,
                    attributes=back_in_stock_item_attributes(BIS_ITEM),
                )
            ),
        ),
        "back-in-stock variant create": ("/api/catalog-variants", single_body(variant_create)),
        "back-in-stock variant update": (
            "/api/catalog-variants/$custom:::$default:::12366_US_NY_23400",
            single_body(variant_update),
        ),
        "back-in-stock subscription": (
            "/api/back-in-stock-subscriptions",
            back_in_stock_subscription_body(
                email="ann@example.com", variant_external_id=BIS_VARIANT.external_id
            ),
        ),
        "profile properties": (
            "/api/profile-import",
            profile_properties_body(
                email="ann@example.com", language="sv", currency="SEK", country_code="SE"
            ),
        ),
        "profile deletion": (
            "/api/data-privacy-deletion-jobs",
            profile_deletion_body(email="a@b.c"),
        ),
    }


@pytest.mark.parametrize("name", list(bodies()))
def test_every_body_matches_klaviyos_published_schema(name):
    path, body = bodies()[name]
    method = "PATCH" if path.count(":::") else "POST"

    spec_validator(str(SPEC)).validate(method, path, body)


def test_the_validator_refuses_what_klaviyo_would_refuse():
    body = bodies()["back-in-stock variant create"][1]
    body["data"]["attributes"]["inventory_quantity"] = "twelve"

    with pytest.raises(ApiError):
        spec_validator(str(SPEC)).validate("POST", "/api/catalog-variants", body)
