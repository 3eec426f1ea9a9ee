"""Contract: every body the project builds is one Klaviyo accepts, on any clone.

Checked with the request models of Klaviyo's official Python SDK (`klaviyo-api`, pinned; the
sandbox's `sdk.body_check`: the model must accept the body and keep every key and value as sent,
so a misspelt attribute fails), and in addition against Klaviyo's OpenAPI spec where it is at
hand (../shared/klaviyo/ or ``KLAVIYO_OPENAPI_SPEC``). Nothing here is skipped without the spec.
"""

import copy
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from klaviyo_sandbox import default_spec_path
from klaviyo_sandbox.errors import ApiError
from klaviyo_sandbox.schema import spec_validator
from klaviyo_sandbox.sdk import body_check, request_model_name
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
    price=Decimal("99"),
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


def method_of(path: str) -> str:
    return "PATCH" if path.count(":::") else "POST"


def contract_check(path: str, body: Any) -> None:
    """The SDK's request model, and Klaviyo's spec where it is at hand."""
    body_check(method_of(path), path, body)
    if SPEC is not None:
        spec_validator(str(SPEC)).validate(method_of(path), path, body)


@pytest.mark.parametrize("name", list(bodies()))
def test_every_body_is_kept_as_sent_by_klaviyos_sdk_request_model(name):
    path, body = bodies()[name]

    assert request_model_name(method_of(path), path) is not None
    contract_check(path, body)


def test_the_checks_refuse_what_klaviyo_would_refuse():
    body = bodies()["back-in-stock variant create"][1]
    body["data"]["attributes"]["inventory_quantity"] = "twelve"

    with pytest.raises(ApiError):
        contract_check("/api/catalog-variants", body)


def attribute_places(body: Any, pointer: str = "") -> Iterator[tuple[str, dict[str, Any], str]]:
    """(pointer, the dict, key) for every key of every `attributes` object in the body, except
    inside `custom_metadata` and `properties` (free-form at Klaviyo); of a list of resources,
    the first stands for all (a job's resources come from one builder)."""
    if isinstance(body, dict):
        for key, value in body.items():
            if key == "attributes" and isinstance(value, dict):
                for name in value:
                    yield f"{pointer}/attributes/{name}", value, name
            if key not in ("custom_metadata", "properties"):
                yield from attribute_places(value, f"{pointer}/{key}")
    elif isinstance(body, list) and body:
        yield from attribute_places(body[0], f"{pointer}/0")


def misspelt_bodies() -> Iterator[tuple[str, str, Any, str]]:
    for name, (path, body) in bodies().items():
        for index, (_, _, key) in enumerate(attribute_places(body)):
            misspelt = copy.deepcopy(body)
            where, attributes, _ = list(attribute_places(misspelt))[index]
            attributes[key + key[-1]] = attributes.pop(key)
            yield f"{name}: {where}", path, misspelt, where


MISSPELT = list(misspelt_bodies())


@pytest.mark.parametrize(
    ("path", "body", "pointer"), [m[1:] for m in MISSPELT], ids=[m[0] for m in MISSPELT]
)
def test_a_payload_with_a_misspelt_attribute_fails_the_contract(path, body, pointer):
    with pytest.raises(ApiError) as refused:
        body_check(method_of(path), path, body)

    parent, key = pointer.rsplit("/", 1)
    assert refused.value.pointer in (f"{parent}/{key}{key[-1]}", pointer)


def test_a_payload_builder_that_misspells_an_attribute_fails_the_contract(monkeypatch):
    from klaviyo_sync import payloads

    original = payloads.back_in_stock_variant_attributes

    def misspelling(variant):
        attributes = original(variant)
        attributes["inventory_polcy"] = attributes.pop("inventory_policy")
        return attributes

    monkeypatch.setitem(globals(), "back_in_stock_variant_attributes", misspelling)
    path, body = bodies()["back-in-stock variant create"]

    with pytest.raises(ApiError) as refused:
        contract_check(path, body)
    assert refused.value.pointer == "/data/attributes/inventory_polcy"
