"""Pure builders from plain domain data to Klaviyo's JSON:API bodies (CONTRACT §8).

No ORM and no HTTP: ``klaviyo_sync.selectors`` turns rows into the dataclasses below, and the
client sends what these functions return. A contract test checks every body against Klaviyo's
published schemas.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from klaviyo_sync.client import catalog_id

BACK_IN_STOCK_CATEGORY_ID = "backinstock"
BACK_IN_STOCK_CATEGORY_NAME = "BackInStock automation"
BACK_IN_STOCK_TITLE_SUFFIX = " - [DO NOT USE][Back in stock automation]"
# 1: hidden from product feeds and recommendation blocks when out of stock (KLAVIYO.md).
BACK_IN_STOCK_INVENTORY_POLICY = 1
MAX_JOB_RESOURCES = 100
MAX_JOB_BYTES = 5 * 1024 * 1024
# Leave room for the job envelope around the resources.
_JOB_BYTES_BUDGET = MAX_JOB_BYTES - 4 * 1024


@dataclass(frozen=True)
class LocalizedText:
    """A text in the store's default language and its translations, keyed by language code."""

    default: str
    by_language: dict[str, str] = field(default_factory=dict)

    def as_metadata(self) -> str:
        """Klaviyo custom metadata is flat: nested values travel as JSON strings."""
        return _json_string({"default": self.default, **self.by_language})


@dataclass(frozen=True)
class CatalogItemData:
    """What the catalog item of one display item is made of."""

    display_item_id: int
    published: bool
    product_name: LocalizedText
    variant_name: LocalizedText
    description: LocalizedText
    url: LocalizedText
    images: list[str]
    price: Decimal | None  # in the integration's base currency
    prices_by_currency: dict[str, Decimal]
    brand: str
    collection: str
    product_type: str


@dataclass(frozen=True)
class BackInStockItemData:
    external_id: str  # 12366_SE_00
    product_name: str
    description: str
    url: str
    images: list[str]
    price: Decimal | None  # in the ship-to country's pricelist; None: not sold there
    # False while the display item is unpublished or deleted, or has no price for the ship-to
    # country: the virtual item is unpublished and its variants hold 0 (CONTRACT §8).
    sold: bool = True


@dataclass(frozen=True)
class BackInStockVariantData:
    external_id: str  # 12366_SE_00_23400
    item_external_id: str
    product_name: str
    size_name: str
    sku: str
    description: str
    url: str
    images: list[str]
    price: Decimal | None
    inventory_quantity: int


def _json_string(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def _money(amount: Decimal | None) -> float | None:
    return float(amount) if amount is not None else None


def payload_hash(attributes: dict[str, Any]) -> str:
    """A stable fingerprint of what was sent, to skip objects that did not change."""
    return hashlib.sha256(_json_string(attributes).encode()).hexdigest()


def inventory_quantity_for(*, availability: int, minimum_stock_level: int) -> int:
    """CONTRACT §8: the availability when it reaches the minimum stock level, else 0.

    Dropping to 0 below the minimum is what makes the next restock a rise, which is what
    Klaviyo's back-in-stock flow waits for.
    """
    return availability if availability >= minimum_stock_level else 0


# --- catalog items -------------------------------------------------------------------------------


def catalog_item_attributes(item: CatalogItemData) -> dict[str, Any]:
    """The attributes of a display item's catalog item, as created and as updated."""
    attributes: dict[str, Any] = {
        "title": item.product_name.default,
        "description": item.description.default,
        "url": item.url.default,
        "images": list(item.images),
        "image_full_url": item.images[0] if item.images else None,
        "image_thumbnail_url": item.images[0] if item.images else None,
        "price": _money(item.price),
        "published": item.published,
        "custom_metadata": {
            "ProductName": item.product_name.as_metadata(),
            "VariantName": item.variant_name.as_metadata(),
            "Description": item.description.as_metadata(),
            "ProductUrl": item.url.as_metadata(),
            "Price": _json_string(
                {currency: _money(amount) for currency, amount in item.prices_by_currency.items()}
            ),
            "Brand": item.brand,
            "Collection": item.collection,
            "ProductType": item.product_type,
        },
    }
    return attributes


def catalog_item_create_resource(
    *, external_id: str, attributes: dict[str, Any], category_ids: list[str] | None = None
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "type": "catalog-item",
        "attributes": {
            "external_id": external_id,
            "integration_type": "$custom",
            "catalog_type": "$default",
            **attributes,
        },
    }
    if category_ids:
        resource["relationships"] = {
            "categories": {
                "data": [{"type": "catalog-category", "id": catalog_id(c)} for c in category_ids]
            }
        }
    return resource


def catalog_item_update_resource(*, external_id: str, attributes: dict[str, Any]) -> dict[str, Any]:
    return {"type": "catalog-item", "id": catalog_id(external_id), "attributes": dict(attributes)}


def unpublished_item_attributes() -> dict[str, Any]:
    """A display item that was unpublished or deleted stays in Klaviyo, unpublished."""
    return {"published": False}


# --- the back-in-stock category, items and variants ----------------------------------------------


def back_in_stock_category_create_resource() -> dict[str, Any]:
    return {
        "type": "catalog-category",
        "attributes": {
            "external_id": BACK_IN_STOCK_CATEGORY_ID,
            "name": BACK_IN_STOCK_CATEGORY_NAME,
            "integration_type": "$custom",
            "catalog_type": "$default",
        },
    }


def back_in_stock_item_attributes(item: BackInStockItemData) -> dict[str, Any]:
    """A virtual item: published only while its display item is sold to that ship-to location.

    Without a price the attribute is left out (Klaviyo keeps the last one): a price is never
    invented.
    """
    attributes: dict[str, Any] = {
        "title": f"{item.product_name}{BACK_IN_STOCK_TITLE_SUFFIX}",
        "description": item.description,
        "url": item.url,
        "images": list(item.images),
        "image_full_url": item.images[0] if item.images else None,
        "image_thumbnail_url": item.images[0] if item.images else None,
        "published": item.sold,
    }
    if item.price is not None:
        attributes["price"] = _money(item.price)
    return attributes


def back_in_stock_variant_attributes(variant: BackInStockVariantData) -> dict[str, Any]:
    """Everything but the stock figure, which travels on its own (see ``variant_stock_*``).

    Klaviyo requires a variant price on create; without one the attribute is left out (an
    update keeps the last one), and the push refuses to create such a variant rather than invent
    a price (``klaviyo_sync.services.back_in_stock_catalog``).
    """
    attributes: dict[str, Any] = {
        "title": f"{variant.product_name} - {variant.size_name}{BACK_IN_STOCK_TITLE_SUFFIX}",
        "description": variant.description,
        "sku": variant.sku,
        "url": variant.url,
        "images": list(variant.images),
        "image_full_url": variant.images[0] if variant.images else None,
        "image_thumbnail_url": variant.images[0] if variant.images else None,
        "inventory_policy": BACK_IN_STOCK_INVENTORY_POLICY,
        "published": True,
    }
    if variant.price is not None:
        attributes["price"] = _money(variant.price)
    return attributes


def catalog_variant_create_resource(
    *, variant: BackInStockVariantData, attributes: dict[str, Any]
) -> dict[str, Any]:
    return {
        "type": "catalog-variant",
        "attributes": {
            "external_id": variant.external_id,
            "integration_type": "$custom",
            "catalog_type": "$default",
            **attributes,
            "inventory_quantity": variant.inventory_quantity,
        },
        "relationships": {
            "item": {"data": {"type": "catalog-item", "id": catalog_id(variant.item_external_id)}}
        },
    }


def catalog_variant_update_resource(
    *, external_id: str, attributes: dict[str, Any]
) -> dict[str, Any]:
    """Update bodies carry no relationships: a variant cannot change item."""
    return {"type": "catalog-variant", "id": catalog_id(external_id), "attributes": attributes}


def variant_stock_update_resource(*, external_id: str, inventory_quantity: int) -> dict[str, Any]:
    return catalog_variant_update_resource(
        external_id=external_id, attributes={"inventory_quantity": inventory_quantity}
    )


# --- envelopes -----------------------------------------------------------------------------------


def single_body(resource: dict[str, Any]) -> dict[str, Any]:
    return {"data": resource}


def bulk_job_body(*, kind: str, operation: str, resources: list[dict[str, Any]]) -> dict[str, Any]:
    """A job body: ``{"data": {"type": "catalog-variant-bulk-create-job", "attributes": ...}}``."""
    plural = {"item": "items", "variant": "variants", "category": "categories"}[kind]
    return {
        "data": {
            "type": f"catalog-{kind}-bulk-{operation}-job",
            "attributes": {plural: {"data": resources}},
        }
    }


def job_batches(resources: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Split resources into jobs of at most 100 resources and 5 MB."""
    batches: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    size = 0
    for resource in resources:
        resource_size = len(_json_string(resource).encode()) + 1
        if current and (
            len(current) >= MAX_JOB_RESOURCES or size + resource_size > _JOB_BYTES_BUDGET
        ):
            batches.append(current)
            current, size = [], 0
        current.append(resource)
        size += resource_size
    if current:
        batches.append(current)
    return batches


def back_in_stock_subscription_body(*, email: str, variant_external_id: str) -> dict[str, Any]:
    return {
        "data": {
            "type": "back-in-stock-subscription",
            "attributes": {
                "channels": ["EMAIL"],
                "profile": {"data": {"type": "profile", "attributes": {"email": email}}},
            },
            "relationships": {
                "variant": {
                    "data": {"type": "catalog-variant", "id": catalog_id(variant_external_id)}
                }
            },
        }
    }


def profile_properties_body(
    *, email: str, language: str, currency: str | None, country_code: str
) -> dict[str, Any]:
    """The subscriber's ``Language`` (and ``Currency``), and a locale such as ``sv-SE``."""
    properties: dict[str, Any] = {"Language": language}
    if currency:
        properties["Currency"] = currency
    return {
        "data": {
            "type": "profile",
            "attributes": {
                "email": email,
                "locale": f"{language}-{country_code}",
                "properties": properties,
            },
        }
    }


def profile_bulk_import_body(*, profiles: list[dict[str, Any]]) -> dict[str, Any]:
    """A profile bulk import job of profile upserts (each the ``data`` of
    ``profile_properties_body``); Klaviyo takes up to 10,000 profiles and 5 MB a job."""
    return {
        "data": {
            "type": "profile-bulk-import-job",
            "attributes": {"profiles": {"data": profiles}},
        }
    }


def profile_deletion_body(*, email: str) -> dict[str, Any]:
    """Klaviyo's data-privacy deletion of the profile with this address."""
    return {
        "data": {
            "type": "data-privacy-deletion-job",
            "attributes": {
                "profile": {"data": {"type": "profile", "attributes": {"email": email}}}
            },
        }
    }
