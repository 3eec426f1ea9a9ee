"""Pushing subscriptions to the Klaviyo sandbox (flow 2)."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from backinstock.models import Subscription
from backinstock.services import subscription_create
from klaviyo_sync.services.subscriptions import (
    PushResult,
    subscription_ids_to_sweep,
    subscription_push,
)
from klaviyo_sync.tasks import push_subscription
from shop.services import StockEntry, stock_entries_apply

pytestmark = pytest.mark.usefixtures("demo_catalog", "back_in_stock_on")


def subscribe(email="ann@example.com", country="US", state="NY", item="12366-23400", language=None):
    subscription_id = subscription_create(
        item=item, country_code=country, state_code=state, email=email, language_code=language
    ).subscription_id
    return Subscription.objects.get(id=subscription_id)


def test_a_push_creates_category_item_variant_subscription_and_profile(sandbox):
    # New Jersey 5 + Stockholm 0 for the US: below the minimum of 10, so Klaviyo gets 0.
    subscription = subscribe()

    assert subscription_push(subscription_id=subscription.id) is PushResult.SUBSCRIBED

    state = sandbox.snapshot()
    item = state["items"]["12366_US_NY"]
    variant = state["variants"]["12366_US_NY_23400"]
    assert item["title"] == "Hoodie - [DO NOT USE][Back in stock automation]"
    assert "backinstock" in str(item["categories"])
    assert item["price"] == 99.0
    assert variant["sku"] == "HD-1-BLK-M"
    assert variant["inventory_policy"] == 1
    assert variant["inventory_quantity"] == 0
    assert "12366_US_NY" in str(variant)
    [event] = state["back_in_stock_subscriptions"]
    assert event["email"] == "ann@example.com"
    assert event["variant_id"] == "$custom:::$default:::12366_US_NY_23400"
    assert event["channels"] == ["EMAIL"]
    profile = state["profiles"]["ann@example.com"]
    assert profile["properties"] == {"Language": "en", "Currency": "USD"}
    subscription.refresh_from_db()
    assert subscription.status == "subscribed"
    assert subscription.subscribed_at is not None


def test_the_variant_carries_the_stock_figure_when_it_reaches_the_minimum(sandbox):
    stock_entries_apply(entries=[StockEntry(sku="HD-1-BLK-M", warehouse="New Jersey", physical=25)])
    subscription = subscribe()

    subscription_push(subscription_id=subscription.id)

    assert sandbox.snapshot()["variants"]["12366_US_NY_23400"]["inventory_quantity"] == 25


def test_a_push_run_twice_sends_once(sandbox):
    subscription = subscribe()

    first = subscription_push(subscription_id=subscription.id)
    second = subscription_push(subscription_id=subscription.id)

    assert (first, second) == (PushResult.SUBSCRIBED, PushResult.NOT_CLAIMED)
    assert len(sandbox.snapshot()["back_in_stock_subscriptions"]) == 1


def test_a_second_subscriber_reuses_the_item_and_variant(sandbox):
    subscription_push(subscription_id=subscribe().id)
    calls_before = sandbox.snapshot()["calls"]

    subscription_push(subscription_id=subscribe(email="bob@example.com").id)

    calls = sandbox.snapshot()["calls"]
    assert calls.get("POST /api/catalog-variants") == calls_before.get("POST /api/catalog-variants")
    assert len(sandbox.snapshot()["back_in_stock_subscriptions"]) == 2


def test_a_failed_profile_job_leaves_the_subscription_subscribed_and_is_sent_again(sandbox):
    from klaviyo_sync.services.dispatch import subscriptions_dispatch

    subscription = subscribe()
    sandbox.add_fault("error", status=503, count=1, path_prefix="/api/profile-bulk-import-jobs")

    assert subscription_push(subscription_id=subscription.id) is PushResult.SUBSCRIBED
    subscription.refresh_from_db()
    assert subscription.status == "subscribed"  # Klaviyo has the back-in-stock subscription
    assert subscription.profile_sent_at is None  # its profile follows

    first = subscriptions_dispatch()
    time.sleep(0.2)  # the sandbox's jobs take 0.05 s
    second = subscriptions_dispatch()
    assert (first.profiles_sent, second.profile_jobs_finished) == (1, 1), (first, second)

    subscription.refresh_from_db()
    assert subscription.profile_sent_at is not None
    assert len(sandbox.snapshot()["back_in_stock_subscriptions"]) == 1
    assert sandbox.snapshot()["profiles"]["ann@example.com"]["properties"]["Language"] == "en"


def test_a_permanent_error_marks_the_subscription_failed_with_klaviyos_detail(sandbox):
    sandbox.add_fault("error", status=400, path_prefix="/api/back-in-stock-subscriptions")
    subscription = subscribe()

    assert push_subscription.apply(args=[subscription.id]).get() == "failed"

    subscription.refresh_from_db()
    assert subscription.status == "failed"
    assert "Klaviyo refused" in subscription.last_error and "400" in subscription.last_error


def test_a_refused_key_keeps_the_subscription_pending_with_the_reason(sandbox, settings):
    settings.KLAVIYO_API_KEY = "wrong-key"
    subscription = subscribe()

    assert push_subscription.apply(args=[subscription.id]).get() == "key-refused"

    subscription.refresh_from_db()
    assert (subscription.status, subscription.attempts) == ("pending", 0)
    assert "401" in subscription.last_error
    assert "wrong-key" not in subscription.last_error


def test_without_a_key_the_subscription_waits_pending(sandbox, settings):
    settings.KLAVIYO_API_KEY = ""
    subscription = subscribe()

    assert push_subscription.apply(args=[subscription.id]).get() == "not-configured"

    subscription.refresh_from_db()
    assert subscription.status == "pending"
    assert sandbox.snapshot()["back_in_stock_subscriptions"] == []


def test_with_an_invalid_url_the_subscription_waits_pending(sandbox, settings):
    settings.KLAVIYO_API_URL = "ftp://x"
    subscription = subscribe()

    assert push_subscription.apply(args=[subscription.id]).get() == "not-configured"

    subscription.refresh_from_db()
    assert subscription.status == "pending"
    assert subscription.last_error.startswith("KLAVIYO_API_URL is not a valid URL")


def test_a_push_that_could_not_be_sent_is_not_recorded_as_klaviyos_refusal(sandbox, settings):
    settings.KLAVIYO_API_KEY = "pk_with_a_newline\n"
    subscription = subscribe()

    assert push_subscription.apply(args=[subscription.id]).get() == "failed"

    subscription.refresh_from_db()
    assert subscription.last_error.startswith("not sent to Klaviyo: ")
    assert "refused" not in subscription.last_error and "pk_with_a_newline" not in (
        subscription.last_error
    )


def test_the_sweep_finds_pending_subscriptions_nobody_is_pushing(db):
    stale, _fresh, claimed, done = (subscribe(email=f"{n}@example.com") for n in "abcd")
    old = timezone.now() - timedelta(minutes=5)
    Subscription.objects.filter(id__in=[stale.id, claimed.id, done.id]).update(updated_at=old)
    Subscription.objects.filter(id=claimed.id).update(
        push_claimed_until=timezone.now() + timedelta(minutes=1)
    )
    Subscription.objects.filter(id=done.id).update(status="subscribed")

    assert subscription_ids_to_sweep(older_than=timedelta(minutes=1), limit=100) == [stale.id]
