"""The dispatcher: the request writes the row and waits on nothing; workers push in batches."""

import time

import pytest

from backinstock.models import Subscription
from klaviyo_sync.models import ProfileImportJob
from klaviyo_sync.services.dispatch import subscriptions_claim, subscriptions_dispatch

# The dispatcher sends from threads with connections of their own: rows must be committed.
pytestmark = [
    pytest.mark.usefixtures("demo_catalog", "back_in_stock_on"),
    pytest.mark.django_db(transaction=True),
]

SUBSCRIBE = "/api/checkout-api/back-in-stock-subscription"


def subscribe(api_client, email: str, item: str = "12366-23400", country: str = "SE"):
    return api_client.post(
        SUBSCRIBE, {"item": item, "shipTo": {"country": country}, "email": email}, format="json"
    )


def test_a_subscribe_answers_at_once_while_the_broker_hangs_and_arrives_after(
    sandbox, api_client, settings, hung_broker
):
    settings.SUBSCRIBE_RATE_PER_CLIENT = "none"
    started = time.monotonic()
    response = subscribe(api_client, "ann@example.com")
    elapsed = time.monotonic() - started

    assert response.status_code == 201
    assert elapsed < 1.0, f"the request waited {elapsed:.2f} s"
    subscriptions_dispatch()
    assert Subscription.objects.get().status == "subscribed"
    assert [s["email"] for s in sandbox.snapshot()["back_in_stock_subscriptions"]] == [
        "ann@example.com"
    ]


def test_one_dispatch_pushes_a_batch_and_sends_their_profiles_in_one_bulk_job(
    sandbox, api_client, settings
):
    settings.SUBSCRIBE_RATE_PER_CLIENT = "none"
    emails = [f"shopper{i}@example.com" for i in range(30)]
    for email in emails:
        assert subscribe(api_client, email).status_code == 201

    result = subscriptions_dispatch()

    assert result.claimed == 30
    assert result.outcomes == {"subscribed": 30}
    state = sandbox.snapshot()
    assert sorted(s["email"] for s in state["back_in_stock_subscriptions"]) == sorted(emails)
    assert state["calls"]["POST /api/profile-bulk-import-jobs"] == 1
    assert "POST /api/profile-import" not in state["calls"]
    assert ProfileImportJob.objects.get().entries.count() == 30
    time.sleep(0.2)  # the sandbox's jobs take 0.05 s
    assert subscriptions_dispatch().profile_jobs_finished == 1
    assert Subscription.objects.filter(profile_sent_at__isnull=True).count() == 0
    assert state["profiles"]["shopper7@example.com"]["properties"]["Language"] == "sv"


def test_a_claimed_subscription_is_not_claimed_again_until_its_lease_runs_out(sandbox, api_client):
    subscribe(api_client, "ann@example.com")

    assert len(subscriptions_claim(limit=10)) == 1
    assert subscriptions_claim(limit=10) == []
    Subscription.objects.update(push_claimed_until=None)
    assert len(subscriptions_claim(limit=10)) == 1


def test_a_retryable_failure_is_held_for_a_retry_and_pushed_by_a_later_dispatch(
    sandbox, api_client
):
    subscribe(api_client, "ann@example.com")
    sandbox.add_fault("error", status=503, path_prefix="/api/back-in-stock-subscriptions")

    assert subscriptions_dispatch().outcomes == {"retry": 1}
    subscription = Subscription.objects.get()
    assert subscription.status == "pending"
    assert "503" in subscription.last_error

    sandbox.clear_faults()
    Subscription.objects.update(push_claimed_until=None)  # the retry's time has come
    assert subscriptions_dispatch().outcomes == {"subscribed": 1}


def test_the_push_log_lines_carry_the_storefront_requests_correlation_id(
    sandbox, api_client, caplog
):
    from django_guid.log_filters import CorrelationId

    response = api_client.post(
        SUBSCRIBE,
        {"item": "12366-23400", "shipTo": {"country": "SE"}, "email": "ann@example.com"},
        format="json",
        HTTP_X_CORRELATION_ID="centra-7f3a-3",
    )
    assert response.status_code == 201
    assert Subscription.objects.get().correlation_id == "centra-7f3a-3"

    caplog.handler.addFilter(CorrelationId())
    with caplog.at_level("INFO", logger="klaviyo_sync"):
        subscriptions_dispatch()

    [line] = [r for r in caplog.records if "accepted by Klaviyo" in r.getMessage()]
    assert line.correlation_id == "centra-7f3a-3"
