"""When a variant's figure rises from 0, the sandbox shows the emails Klaviyo's flow would send."""

from __future__ import annotations

import json
from typing import Any

import requests

from klaviyo_sandbox import Sandbox
from klaviyo_sandbox.emails import display_item_id_of, price_text
from tests.klaviyo_sandbox.test_server import (
    PREFIX,
    item,
    post,
    profile,
    run_job,
    subscription,
    variant,
)
from tests.sandbox import (
    API_HEADERS,
    klaviyo_sandbox_fixture,  # noqa: F401  (the `klaviyo_sandbox` fixture)
)

VARIANT = "12366_SE_00_23400"
METADATA = {
    "ProductName": json.dumps({"default": "Hoodie", "sv": "Luvtröja", "de": "Kapuzenpullover"}),
    "ProductUrl": json.dumps(
        {
            "default": "https://shop.example/hoodie-black",
            "sv": "https://shop.example/luvtroja-svart",
        }
    ),
    "Price": json.dumps({"SEK": 999.0, "EUR": 89.0, "USD": 99.0}),
}


def catalog_fill(sandbox: Sandbox, *, with_catalog_item: bool = True) -> None:
    if with_catalog_item:
        catalog_item = item(
            "12366", custom_metadata=METADATA, image_full_url="https://cdn.example/h.jpg"
        )
        assert post(sandbox, "/api/catalog-items", {"data": catalog_item}).ok
    assert post(sandbox, "/api/catalog-items", {"data": item("12366_SE_00")}).ok
    assert post(sandbox, "/api/catalog-variants", {"data": variant(VARIANT, "12366_SE_00")}).ok


def wait(sandbox: Sandbox, email: str, **properties: str) -> None:
    if properties:
        assert post(sandbox, "/api/profile-import", profile(email, properties=properties)).ok
    assert post(sandbox, "/api/back-in-stock-subscriptions", subscription(email, VARIANT)).ok


def figure_set(sandbox: Sandbox, quantity: int) -> None:
    body = {
        "data": {
            "type": "catalog-variant",
            "id": PREFIX + VARIANT,
            "attributes": {"inventory_quantity": quantity},
        }
    }
    answer = requests.patch(
        f"{sandbox.url}/api/catalog-variants/{PREFIX}{VARIANT}",
        json=body,
        headers=API_HEADERS,
        timeout=5,
    )
    assert answer.status_code == 200, answer.text


def emails(sandbox: Sandbox) -> list[dict[str, Any]]:
    return sandbox.snapshot()["back_in_stock_emails"]


def test_a_rise_from_zero_emails_each_waiting_subscriber_once_in_their_language_and_currency(
    klaviyo_sandbox: Sandbox,
) -> None:
    catalog_fill(klaviyo_sandbox)
    wait(klaviyo_sandbox, "ann@example.com", Language="sv", Currency="SEK")
    wait(klaviyo_sandbox, "ANN@example.com")  # the same shopper again
    wait(klaviyo_sandbox, "max@example.de", Language="de", Currency="EUR")

    figure_set(klaviyo_sandbox, 43)

    sent = {email["to"].lower(): email for email in emails(klaviyo_sandbox)}
    assert set(sent) == {"ann@example.com", "max@example.de"}
    ann = sent["ann@example.com"]
    assert ann["subject"] == "Luvtröja finns i lager igen"
    assert (ann["product_name"], ann["price"], ann["cta"]) == ("Luvtröja", "999 SEK", "Köp nu")
    assert ann["url"] == "https://shop.example/luvtroja-svart"
    assert ann["image"] == "https://cdn.example/h.jpg"
    assert (ann["display_item"], ann["inventory_quantity"], ann["skipped"]) == ("12366", 43, None)
    assert (sent["max@example.de"]["product_name"], sent["max@example.de"]["price"]) == (
        "Kapuzenpullover",
        "89 EUR",
    )


def test_without_profile_properties_the_email_is_in_the_default_language_without_a_price(
    klaviyo_sandbox: Sandbox,
) -> None:
    catalog_fill(klaviyo_sandbox)
    wait(klaviyo_sandbox, "bob@example.com")

    figure_set(klaviyo_sandbox, 12)

    [bob] = emails(klaviyo_sandbox)
    assert (bob["language"], bob["product_name"], bob["price"]) == ("en", "Hoodie", None)
    assert bob["url"] == "https://shop.example/hoodie-black"


def test_only_a_rise_from_zero_sends_and_a_subscriber_told_once_is_not_told_again(
    klaviyo_sandbox: Sandbox,
) -> None:
    catalog_fill(klaviyo_sandbox)
    wait(klaviyo_sandbox, "ann@example.com", Language="sv", Currency="SEK")

    figure_set(klaviyo_sandbox, 5)
    figure_set(klaviyo_sandbox, 40)  # a rise, but not from 0
    figure_set(klaviyo_sandbox, 0)
    figure_set(klaviyo_sandbox, 12)  # from 0 again: Ann was told already

    assert len(emails(klaviyo_sandbox)) == 1


def test_a_bulk_update_job_that_raises_the_figure_sends_too(klaviyo_sandbox: Sandbox) -> None:
    catalog_fill(klaviyo_sandbox)
    wait(klaviyo_sandbox, "ann@example.com", Language="sv", Currency="SEK")
    update = {
        "type": "catalog-variant",
        "id": PREFIX + VARIANT,
        "attributes": {"inventory_quantity": 43},
    }

    run_job(klaviyo_sandbox, "variant", "update", [update])

    [ann] = emails(klaviyo_sandbox)
    assert (ann["subject"], ann["price"]) == ("Luvtröja finns i lager igen", "999 SEK")


def test_without_the_catalog_item_the_email_is_skipped_as_at_klaviyo(
    klaviyo_sandbox: Sandbox,
) -> None:
    catalog_fill(klaviyo_sandbox, with_catalog_item=False)
    wait(klaviyo_sandbox, "ann@example.com", Language="sv", Currency="SEK")

    figure_set(klaviyo_sandbox, 43)

    [ann] = emails(klaviyo_sandbox)
    assert ann["skipped"] == "catalog item `12366` not found"
    assert ann["subject"] is None


def test_the_emails_page_shows_what_the_shopper_reads(klaviyo_sandbox: Sandbox) -> None:
    catalog_fill(klaviyo_sandbox)
    wait(klaviyo_sandbox, "ann@example.com", Language="sv", Currency="SEK")
    figure_set(klaviyo_sandbox, 43)

    html = requests.get(klaviyo_sandbox.url + "/emails", timeout=5).text

    assert "Luvtröja finns i lager igen" in html
    assert "999 SEK" in html
    assert 'href="https://shop.example/luvtroja-svart"' in html


def test_the_display_item_is_read_from_the_virtual_variants_external_id() -> None:
    assert display_item_id_of("12366_SE_00_23400") == "12366"
    assert display_item_id_of("12366_US_NY_23400") == "12366"
    assert (price_text(999.0, "SEK"), price_text(89.5, "EUR")) == ("999 SEK", "89.50 EUR")
