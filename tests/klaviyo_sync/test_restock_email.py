"""The demo's last step: the email a shopper in Sweden gets, in Swedish, with the SEK price.

Everything Klaviyo's back-in-stock flow needs to fill the README's template comes from what the
project sends: the catalog item's `custom_metadata` (catalog sync), the virtual variant and its
rise from 0 (stock push), and the profile's `Language` and `Currency` (subscription push). The
sandbox renders the email from that alone.
"""

import pytest

from backinstock.services import subscription_create
from klaviyo_sync.services.catalog import catalog_sync_run
from klaviyo_sync.services.stock import stock_figures_push
from klaviyo_sync.services.subscriptions import subscription_push
from shop.services import StockEntry, stock_entries_apply
from tests.sandbox import wait_for_jobs

pytestmark = pytest.mark.usefixtures("demo_catalog", "back_in_stock_on")


def test_a_restock_in_stockholm_ends_in_annas_email_in_swedish_with_the_sek_price(sandbox):
    catalog_sync_run(full=True)
    wait_for_jobs(sandbox)
    subscription_id = subscription_create(
        item="12366-23400",
        country_code="SE",
        state_code=None,
        email="anna@example.se",
        language_code="sv",
    ).subscription_id
    subscription_push(subscription_id=subscription_id)
    assert sandbox.snapshot()["back_in_stock_emails"] == []

    stock_entries_apply(entries=[StockEntry("HD-1-BLK-M", "Stockholm", physical=40)])
    stock_figures_push(size_ids=[23400])
    wait_for_jobs(sandbox)

    [email] = sandbox.snapshot()["back_in_stock_emails"]
    assert email["to"] == "anna@example.se"
    assert (email["variant"], email["display_item"]) == ("12366_SE_00_23400", "12366")
    assert (email["language"], email["currency"]) == ("sv", "SEK")
    assert email["subject"] == "Luvtröja finns i lager igen"
    assert email["product_name"] == "Luvtröja"
    assert email["price"] == "999 SEK"
    assert email["url"].endswith("luvtroja-svart")
    assert email["image"] == "https://cdn.example.com/hoodie-black.jpg"
    assert email["inventory_quantity"] == 43
