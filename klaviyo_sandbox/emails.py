"""The emails Klaviyo's back-in-stock flow would send, filled only from what the sandbox holds.

When a variant's `inventory_quantity` rises from 0 (a bulk update job or a PATCH), Klaviyo's
flow emails each subscriber waiting on it, once (KLAVIYO.md, "What Klaviyo does with them"). The
template the README gives looks up the real catalog item with `{% catalog %}`, its id read from
the virtual variant's external id (`12366_SE_00_23400` -> `12366`), and picks the product name,
URL and price from the item's `custom_metadata` (JSON strings keyed by language or currency, see
klaviyo_sync/payloads.py) with the profile's `Language` and `Currency` properties. This module
does the same. A message whose catalog look-up fails is skipped, as at Klaviyo.
"""

from __future__ import annotations

import json
from typing import Any

from .errors import iso_now

# The template's own words, per language (the README's template has the same table).
PHRASES = {
    "en": {"subject": "{name} is back in stock", "body": "Your size is back.", "cta": "Buy now"},
    "sv": {
        "subject": "{name} finns i lager igen",
        "body": "Din storlek är tillbaka.",
        "cta": "Köp nu",
    },
    "de": {
        "subject": "{name} ist wieder da",
        "body": "Deine Größe ist wieder da.",
        "cta": "Jetzt kaufen",
    },
}
DEFAULT_LANGUAGE = "en"


def display_item_id_of(variant_external_id: str) -> str:
    """The display item of a virtual variant: `12366_SE_00_23400` -> `12366`."""
    return variant_external_id.split("_", 1)[0]


def _metadata_value(metadata: dict[str, Any], key: str) -> dict[str, Any]:
    """One custom metadata entry, a JSON string of an object; {} when absent or not that."""
    try:
        value = json.loads(metadata.get(key) or "{}")
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _localized(metadata: dict[str, Any], key: str, language: str) -> str | None:
    """`{"default": "Hoodie", "sv": "Luvtröja"}` in `language`, else the default text."""
    texts = _metadata_value(metadata, key)
    value = texts.get(language) or texts.get("default")
    return str(value) if value else None


def price_text(amount: float, currency: str) -> str:
    """`999 SEK`, `89.50 EUR`."""
    figure = f"{amount:.0f}" if float(amount).is_integer() else f"{amount:.2f}"
    return f"{figure} {currency}"


def restock_email(
    *,
    email: str,
    variant_external_id: str,
    variant: dict[str, Any],
    item: dict[str, Any] | None,
    profile: dict[str, Any] | None,
) -> dict[str, Any]:
    """One email as the README's template renders it, or a skipped one with the reason.

    Answers `{at, to, variant, display_item, language, currency, subject, body, product_name,
    variant_title, url, image, price, cta, inventory_quantity, skipped}`; `skipped` is None when
    the email is sent, else why not (then the content fields are None).
    """
    properties = (profile or {}).get("properties") or {}
    language = str(properties.get("Language") or DEFAULT_LANGUAGE)
    currency = properties.get("Currency")
    display_item = display_item_id_of(variant_external_id)
    email_record: dict[str, Any] = {
        "at": iso_now(),
        "to": email,
        "variant": variant_external_id,
        "display_item": display_item,
        "language": language,
        "currency": currency,
        "inventory_quantity": variant.get("inventory_quantity"),
        "variant_title": variant.get("title"),
        "skipped": None,
    }
    content = dict.fromkeys(("subject", "body", "product_name", "url", "image", "price", "cta"))
    if item is None:
        email_record.update(content, skipped=f"catalog item `{display_item}` not found")
        return email_record
    metadata = item.get("custom_metadata") or {}
    name = _localized(metadata, "ProductName", language) or item.get("title")
    amount = _metadata_value(metadata, "Price").get(currency) if currency else None
    phrases = PHRASES.get(language, PHRASES[DEFAULT_LANGUAGE])
    email_record.update(
        subject=phrases["subject"].format(name=name),
        body=phrases["body"],
        cta=phrases["cta"],
        product_name=name,
        url=_localized(metadata, "ProductUrl", language) or item.get("url"),
        image=item.get("image_full_url") or next(iter(item.get("images") or []), None),
        price=price_text(float(amount), str(currency)) if amount is not None else None,
    )
    return email_record
