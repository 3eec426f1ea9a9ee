"""End to end: a real Celery worker, PostgreSQL, Redis and the Klaviyo sandbox."""

import json
import logging

import pytest
from django.core.management import call_command
from django.db import connection

from klaviyo_sync.models import IntegrationSettings
from tests.worker import broker_purge, running_worker, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

ITEM = {
    "item": "12366-23400",
    "shipTo": {"country": "US", "state": "NY"},
    "email": "ann@example.com",
    "language": "sv",
}


def completed_sync() -> bool:
    connection.close()  # see the worker's commits
    return IntegrationSettings.objects.filter(first_full_sync_completed_at__isnull=False).exists()


CORRELATION_ID = "storefront-e2e-7f3a"
SECRETS = ("shop-key-d41d8cd9", "erp-token-8f00b204", "pk_sandbox_test")


def test_a_storefront_post_travels_to_a_klaviyo_back_in_stock_subscription(
    sandbox, demo_catalog, api_client, settings, tmp_path, caplog
):
    caplog.set_level(logging.DEBUG)
    settings.SHOP_API_KEY = SECRETS[0]
    settings.INTEGRATION_API_TOKEN = SECRETS[1]
    assert SECRETS[2] == settings.KLAVIYO_API_KEY
    broker_purge()
    worker_log = tmp_path / "worker.log"
    with running_worker(log_path=worker_log, loglevel="debug", beat=True):
        # Switching catalog sync on syncs the demo catalog...
        call_command("klaviyo", "configure", "--catalog-sync", "on")
        wait_until(completed_sync, timeout=60, message="the initial full sync did not complete")
        assert {"12366", "12367", "12400", "12500"} <= set(sandbox.snapshot()["items"])

        # ...after which back in stock can be switched on,
        call_command("klaviyo", "configure", "--back-in-stock", "on")
        response = api_client.post(
            "/api/checkout-api/back-in-stock-subscription",
            ITEM,
            format="json",
            HTTP_X_CORRELATION_ID=CORRELATION_ID,
        )
        assert response.status_code == 201
        assert response["X-Correlation-ID"] == CORRELATION_ID

        # and the subscription ends in Klaviyo on the right variant, its profile following.
        wait_until(
            lambda: sandbox.snapshot()["back_in_stock_subscriptions"],
            timeout=30,
            message="no back-in-stock subscription reached the sandbox",
        )
        wait_until(
            lambda: sandbox.snapshot()["profiles"]["ann@example.com"]["properties"],
            timeout=30,
            message="the profile's properties did not reach the sandbox",
        )
        state = sandbox.snapshot()
        [event] = state["back_in_stock_subscriptions"]
        assert event["email"] == "ann@example.com"
        assert event["variant_id"] == "$custom:::$default:::12366_US_NY_23400"
        variant = state["variants"]["12366_US_NY_23400"]
        assert "12366_US_NY" in json.dumps(variant)
        assert "backinstock" in json.dumps(state["items"]["12366_US_NY"])
        assert state["profiles"]["ann@example.com"]["properties"] == {
            "Language": "sv",
            "Currency": "USD",
        }

        def shop_api_status() -> str:
            listed = api_client.get(
                "/api/shop-api/back-in-stock-subscriptions",
                {"email": "ann@example.com"},
                HTTP_API_AUTHORIZATION=SECRETS[0],
            ).json()["subscriptions"]
            return listed[0]["status"]

        wait_until(lambda: shop_api_status() == "subscribed", timeout=15)

        # A restock through the Integration API reaches the variant's stock figure.
        api_client.post(
            "/api/integration-api/stock",
            {"stock": [{"sku": "HD-1-BLK-M", "warehouse": "New Jersey", "physical": 40}]},
            format="json",
            HTTP_AUTHORIZATION=f"Bearer {SECRETS[1]}",
        )
        wait_until(
            lambda: sandbox.snapshot()["variants"]["12366_US_NY_23400"]["inventory_quantity"] == 40,
            timeout=30,
            message="the restock did not reach Klaviyo",
        )

        # Erasing with the profile: answered at once, and the worker has Klaviyo delete it.
        erased = api_client.delete(
            "/api/shop-api/back-in-stock-subscriptions?email=ANN@example.com"
            "&deleteKlaviyoProfile=true",
            HTTP_API_AUTHORIZATION=SECRETS[0],
        )
        assert erased.json() == {"deleted": 1, "klaviyoProfileDeletion": "requested"}
        wait_until(
            lambda: "ann@example.com" not in sandbox.snapshot()["profiles"],
            timeout=30,
            message="the profile deletion did not reach Klaviyo",
        )

    # Secrets never appear in logs: the worker's (at debug level) and this process's.
    logs = worker_log.read_text() + caplog.text
    assert "Task klaviyo_sync.tasks.dispatch_subscriptions" in logs  # the full run's log
    # The storefront's correlation id follows the subscription into the worker's log lines.
    assert any(
        f"[{CORRELATION_ID}]" in line and "accepted by Klaviyo" in line
        for line in worker_log.read_text().splitlines()
    )
    for secret in SECRETS:
        assert secret not in logs
