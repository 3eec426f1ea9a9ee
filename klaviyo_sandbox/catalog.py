"""The catalog the sandbox holds: items, variants and categories keyed by external id.

Not thread-safe by itself: the store calls these methods while holding its lock.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from .errors import iso_now

ID_PREFIX = "$custom:::$default:::"
KINDS = ("item", "variant", "category")
PLURALS = {"item": "items", "variant": "variants", "category": "categories"}
KIND_OF_PLURAL = {plural: kind for kind, plural in PLURALS.items()}

# Klaviyo's wording in job errors and 409s: "A variant with the external id `X` already exists."
DUPLICATE_NOUNS = {"item": "A catalog item", "variant": "A variant", "category": "A category"}
MISSING_NOUNS = {
    "item": "Catalog item",
    "variant": "Catalog variant",
    "category": "Catalog category",
}

# The attributes Klaviyo answers with, per kind, and the defaults of the optional ones.
_IMAGES_AND_MORE: dict[str, Any] = {
    "image_full_url": None,
    "image_thumbnail_url": None,
    "images": [],
    "custom_metadata": {},
    "published": True,
}
ATTRIBUTE_DEFAULTS: dict[str, dict[str, Any]] = {
    "item": {
        **dict.fromkeys(("external_id", "title", "description", "price", "url")),
        **_IMAGES_AND_MORE,
    },
    "variant": {
        **dict.fromkeys(("external_id", "title", "description", "sku")),
        "inventory_policy": 0,
        **dict.fromkeys(("inventory_quantity", "price", "url")),
        **_IMAGES_AND_MORE,
    },
    "category": {"external_id": None, "name": None},
}


def catalog_id(external_id: str) -> str:
    """Klaviyo's id of a custom catalog object: `$custom:::$default:::<external_id>`."""
    return f"{ID_PREFIX}{external_id}"


def external_id_of(klaviyo_id: str) -> str | None:
    """The external id inside a catalog id, or None when the id is not a custom catalog id."""
    if not klaviyo_id.startswith(ID_PREFIX) or len(klaviyo_id) == len(ID_PREFIX):
        return None
    return klaviyo_id[len(ID_PREFIX) :]


def missing_detail(kind: str, external_id: str) -> str:
    return f"{MISSING_NOUNS[kind]} `{external_id}` does not exist."


class CatalogError(Exception):
    """A catalog operation that cannot be done: a duplicate (409) or a missing object (404)."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail


def _missing(kind: str, external_id: str) -> CatalogError:
    return CatalogError(404, "not_found", missing_detail(kind, external_id))


@dataclass
class Record:
    """One catalog object: its attributes and the external ids it points at.

    `links` holds an item's category external ids, or a variant's one item external id.
    """

    attributes: dict[str, Any]
    links: list[str] = field(default_factory=list)


class Catalog:
    """Items, variants and categories, each a dict from external id to Record.

    `on_restock` is called with a variant's external id when an update raises its
    `inventory_quantity` from 0 (or none) above 0: what Klaviyo's back-in-stock flow waits for.
    """

    def __init__(self, on_restock: Callable[[str], None] | None = None) -> None:
        self.objects: dict[str, dict[str, Record]] = {kind: {} for kind in KINDS}
        self._on_restock = on_restock

    def clear(self) -> None:
        for objects in self.objects.values():
            objects.clear()

    def get(self, kind: str, external_id: str) -> Record:
        record = self.objects[kind].get(external_id)
        if record is None:
            raise _missing(kind, external_id)
        return record

    def create(self, kind: str, resource: dict[str, Any]) -> str:
        """Create one object from a JSON:API create resource; answer its external id."""
        attributes = resource.get("attributes") or {}
        external_id = str(attributes["external_id"])
        if external_id in self.objects[kind]:
            raise CatalogError(
                409,
                "duplicate",
                f"{DUPLICATE_NOUNS[kind]} with the external id `{external_id}` already exists.",
            )
        links = self._links(kind, resource.get("relationships") or {})
        now = iso_now()
        stored = copy.deepcopy(ATTRIBUTE_DEFAULTS[kind])
        stored.update({key: value for key, value in attributes.items() if key in stored})
        if kind != "category":
            stored["created"] = now
        stored["updated"] = now
        self.objects[kind][external_id] = Record(attributes=stored, links=links)
        return external_id

    def update(self, kind: str, external_id: str, resource: dict[str, Any]) -> None:
        """Apply a JSON:API update resource: given attributes replace, null ones are ignored."""
        record = self.get(kind, external_id)
        relationships = resource.get("relationships") or {}
        if kind == "item" and "categories" in relationships:
            record.links = self._links(kind, relationships)
        before = record.attributes.get("inventory_quantity") or 0
        for key, value in (resource.get("attributes") or {}).items():
            if key in record.attributes and key != "external_id" and value is not None:
                record.attributes[key] = value
        record.attributes["updated"] = iso_now()
        after = record.attributes.get("inventory_quantity") or 0
        if kind == "variant" and before <= 0 < after and self._on_restock is not None:
            self._on_restock(external_id)

    def delete(self, kind: str, external_id: str) -> list[str]:
        """Delete one object; an item takes its variants along, a category leaves its items.

        Answers the external ids of the variants an item took along (else an empty list).
        """
        self.get(kind, external_id)
        del self.objects[kind][external_id]
        taken: list[str] = []
        if kind == "item":
            variants = self.objects["variant"]
            taken = [key for key, rec in variants.items() if rec.links == [external_id]]
            for variant_id in taken:
                del variants[variant_id]
        elif kind == "category":
            for item in self.objects["item"].values():
                if external_id in item.links:
                    item.links.remove(external_id)
        return taken

    def _links(self, kind: str, relationships: dict[str, Any]) -> list[str]:
        """The external ids a create or update points at; each must exist."""
        if kind == "variant":
            wanted = [(relationships.get("item") or {}).get("data") or {}]
            target = "item"
        elif kind == "item":
            wanted = (relationships.get("categories") or {}).get("data") or []
            target = "category"
        else:
            return []
        links = []
        for reference in wanted:
            klaviyo_id = str(reference.get("id") or "")
            linked = external_id_of(klaviyo_id)
            if linked is None or linked not in self.objects[target]:
                raise _missing(target, linked or klaviyo_id)
            links.append(linked)
        return links

    def resource(self, kind: str, external_id: str, base_url: str) -> dict[str, Any]:
        """The JSON:API resource Klaviyo answers with for one object."""
        record = self.get(kind, external_id)
        klaviyo_id = catalog_id(external_id)
        document: dict[str, Any] = {
            "type": f"catalog-{kind}",
            "id": klaviyo_id,
            "attributes": dict(record.attributes),
            "links": {"self": f"{base_url}/api/catalog-{PLURALS[kind]}/{quote(klaviyo_id, '')}"},
        }
        if kind == "item":
            categories = [{"type": "catalog-category", "id": catalog_id(c)} for c in record.links]
            document["relationships"] = {"categories": {"data": categories}}
        elif kind == "variant":
            item = {"type": "catalog-item", "id": catalog_id(record.links[0])}
            document["relationships"] = {"item": {"data": item}}
        return document

    def snapshot(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Plain data for `/_sandbox/state`: attributes plus `categories` or `item`."""
        items = {
            key: {**rec.attributes, "categories": list(rec.links)}
            for key, rec in self.objects["item"].items()
        }
        variants = {
            key: {**rec.attributes, "item": rec.links[0]}
            for key, rec in self.objects["variant"].items()
        }
        categories = {key: dict(rec.attributes) for key, rec in self.objects["category"].items()}
        return {"items": items, "variants": variants, "categories": categories}
