"""The sandbox's own structural checks, run on every body whether or not the spec is loaded.

They hold what the spec does not say (at most 100 resources per job, no `relationships` on a
variant update, only `type` and `id` on a delete) and the spec's essentials when it is absent.
Each function answers the parts the handler needs, or raises a 400 `invalid` ApiError.
"""

from __future__ import annotations

import json
from typing import Any

from .catalog import PLURALS
from .errors import invalid

MAX_JOB_RESOURCES = 100
MAX_CUSTOM_METADATA_BYTES = 100 * 1024
CHANNELS = ("EMAIL", "PUSH", "SMS", "WHATSAPP")

# fmt: off
STRING, NUMBER, INTEGER = "string", "number", "integer"
BOOLEAN, ARRAY, OBJECT = "boolean", "array", "object"
# Attribute types per kind; the create-required ones are listed in REQUIRED.
TYPES: dict[str, dict[str, str]] = {
    "item": {
        "external_id": STRING, "title": STRING, "description": STRING, "url": STRING,
        "price": NUMBER, "image_full_url": STRING, "image_thumbnail_url": STRING,
        "images": ARRAY, "custom_metadata": OBJECT, "published": BOOLEAN,
    },
    "variant": {
        "external_id": STRING, "title": STRING, "description": STRING, "sku": STRING,
        "inventory_quantity": NUMBER, "inventory_policy": INTEGER, "price": NUMBER,
        "url": STRING, "image_full_url": STRING, "image_thumbnail_url": STRING,
        "images": ARRAY, "custom_metadata": OBJECT, "published": BOOLEAN,
    },
    "category": {"external_id": STRING, "name": STRING},
}
REQUIRED = {
    "item": ("external_id", "title", "description", "url"),
    "variant": (
        "external_id", "title", "description", "sku", "inventory_quantity", "price", "url"
    ),
    "category": ("external_id", "name"),
}
# fmt: on


def _is(value: Any, kind: str) -> bool:
    if kind == NUMBER:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == INTEGER:
        return isinstance(value, int) and not isinstance(value, bool)
    python_type = {STRING: str, BOOLEAN: bool, ARRAY: list, OBJECT: dict}[kind]
    return isinstance(value, python_type)


def _object(value: Any, pointer: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid(f"`{pointer or '/'}` must be an object.", pointer or "/")
    return value


def _data(body: Any, expected_type: str) -> dict[str, Any]:
    data = _object(_object(body, "").get("data"), "/data")
    if data.get("type") != expected_type:
        raise invalid(f"`type` must be `{expected_type}`.", "/data/type")
    return data


def _string(value: Any, pointer: str) -> str:
    if not isinstance(value, str) or not value:
        raise invalid("A non-empty string is required.", pointer)
    return value


def _attributes(kind: str, resource: dict[str, Any], pointer: str, *, create: bool) -> None:
    attributes = _object(resource.get("attributes"), f"{pointer}/attributes")
    for name in REQUIRED[kind] if create else ():
        if name not in attributes or attributes[name] is None:
            raise invalid(f"`{name}` is required.", f"{pointer}/attributes/{name}")
    for name, value in attributes.items():
        expected = TYPES[kind].get(name)
        if expected is None or (value is None and not (create and name in REQUIRED[kind])):
            continue
        if not _is(value, expected):
            raise invalid(f"`{name}` must be a {expected}.", f"{pointer}/attributes/{name}")
    if create:
        _string(attributes["external_id"], f"{pointer}/attributes/external_id")
    if attributes.get("inventory_policy") not in (None, 0, 1, 2):
        raise invalid("`inventory_policy` must be 0, 1 or 2.", f"{pointer}/attributes")
    metadata = attributes.get("custom_metadata")
    if metadata and len(json.dumps(metadata).encode()) > MAX_CUSTOM_METADATA_BYTES:
        raise invalid("`custom_metadata` may be at most 100 kB.", f"{pointer}/attributes")


def _reference(value: Any, expected_type: str, pointer: str) -> str:
    reference = _object(value, pointer)
    if reference.get("type") != expected_type:
        raise invalid(f"`type` must be `{expected_type}`.", f"{pointer}/type")
    return _string(reference.get("id"), f"{pointer}/id")


def _relationships(kind: str, resource: dict[str, Any], pointer: str, *, create: bool) -> None:
    relationships = resource.get("relationships")
    if kind == "variant" and not create:
        if relationships is not None:
            raise invalid(
                "A variant update carries no `relationships`: a variant cannot change item.",
                f"{pointer}/relationships",
            )
        return
    if kind == "variant":
        item = _object(relationships, f"{pointer}/relationships").get("item")
        item = _object(item, f"{pointer}/relationships/item")
        _reference(item.get("data"), "catalog-item", f"{pointer}/relationships/item/data")
    elif kind == "item" and relationships is not None:
        categories = _object(relationships, f"{pointer}/relationships").get("categories")
        if categories is not None:
            listed = _object(categories, f"{pointer}/relationships/categories").get("data")
            if not isinstance(listed, list):
                raise invalid("A list is required.", f"{pointer}/relationships/categories/data")
            for index, reference in enumerate(listed):
                where = f"{pointer}/relationships/categories/data/{index}"
                _reference(reference, "catalog-category", where)


def check_resource(kind: str, operation: str, resource: Any, pointer: str) -> dict[str, Any]:
    """One catalog resource of a create, update or delete."""
    resource = _object(resource, pointer)
    if resource.get("type") != f"catalog-{kind}":
        raise invalid(f"`type` must be `catalog-{kind}`.", f"{pointer}/type")
    if operation != "create":
        _string(resource.get("id"), f"{pointer}/id")
    if operation == "delete":
        extra = sorted(set(resource) - {"type", "id"})
        if extra:
            raise invalid(f"A delete carries only `type` and `id`, not {extra}.", pointer)
        return resource
    _attributes(kind, resource, pointer, create=operation == "create")
    _relationships(kind, resource, pointer, create=operation == "create")
    return resource


def check_job(kind: str, operation: str, body: Any) -> list[dict[str, Any]]:
    """A bulk job body; answers its resources (1 to 100)."""
    data = _data(body, f"catalog-{kind}-bulk-{operation}-job")
    plural = PLURALS[kind]
    attributes = _object(data.get("attributes"), "/data/attributes")
    container = _object(attributes.get(plural), f"/data/attributes/{plural}")
    resources = container.get("data")
    pointer = f"/data/attributes/{plural}/data"
    if not isinstance(resources, list) or not resources:
        raise invalid("A non-empty list of resources is required.", pointer)
    if len(resources) > MAX_JOB_RESOURCES:
        raise invalid(
            f"A job takes at most {MAX_JOB_RESOURCES} resources; this one has {len(resources)}.",
            pointer,
        )
    return [check_resource(kind, operation, r, f"{pointer}/{i}") for i, r in enumerate(resources)]


def check_single(kind: str, operation: str, body: Any, klaviyo_id: str | None) -> dict[str, Any]:
    """The body of a single create or update; an update's `data.id` must be the URL's id."""
    resource = check_resource(kind, operation, _object(body, "").get("data"), "/data")
    if klaviyo_id is not None and resource.get("id") != klaviyo_id:
        raise invalid("`data.id` must match the id in the URL.", "/data/id")
    return resource


def check_back_in_stock(body: Any) -> tuple[str | None, str | None, str, list[str]]:
    """A server back-in-stock subscription; answers email, phone, variant id and channels."""
    data = _data(body, "back-in-stock-subscription")
    attributes = _object(data.get("attributes"), "/data/attributes")
    channels = attributes.get("channels")
    if not isinstance(channels, list) or not channels or not set(channels) <= set(CHANNELS):
        raise invalid(f"`channels` must be a non-empty subset of {CHANNELS}.", "/data/attributes")
    profile = _object(attributes.get("profile"), "/data/attributes/profile")
    pointer = "/data/attributes/profile/data"
    profile_data = _object(profile.get("data"), pointer)
    identifiers = _object(profile_data.get("attributes"), f"{pointer}/attributes")
    email, phone = identifiers.get("email"), identifiers.get("phone_number")
    if not email and not phone:
        raise invalid("The profile needs an `email` or a `phone_number`.", f"{pointer}/attributes")
    relationships = _object(data.get("relationships"), "/data/relationships")
    variant = _object(relationships.get("variant"), "/data/relationships/variant")
    variant_id = _reference(variant.get("data"), "catalog-variant", "/data/relationships/variant")
    return email, phone, variant_id, list(channels)


def check_profile_import(body: Any) -> tuple[str | None, dict[str, Any]]:
    """A profile upsert; answers the optional profile id and the attributes."""
    data = _data(body, "profile")
    attributes = _object(data.get("attributes"), "/data/attributes")
    properties = attributes.get("properties")
    if properties is not None and not isinstance(properties, dict):
        raise invalid("`properties` must be an object.", "/data/attributes/properties")
    profile_id = data.get("id")
    return (str(profile_id) if profile_id else None), attributes


def check_deletion(body: Any) -> tuple[str | None, str | None, str | None]:
    """A data-privacy deletion; answers (profile id, email, phone), exactly one of them set."""
    data = _data(body, "data-privacy-deletion-job")
    attributes = _object(data.get("attributes"), "/data/attributes")
    pointer = "/data/attributes/profile/data"
    profile = _object(_object(attributes.get("profile"), pointer[:-5]).get("data"), pointer)
    if profile.get("type") != "profile":
        raise invalid("`type` must be `profile`.", f"{pointer}/type")
    identifiers = _object(profile.get("attributes", {}), f"{pointer}/attributes")
    found = (profile.get("id"), identifiers.get("email"), identifiers.get("phone_number"))
    if sum(1 for value in found if value) != 1:
        raise invalid("Give exactly one of `id`, `email` or `phone_number`.", pointer)
    return found
