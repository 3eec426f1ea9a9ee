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


def _every_sold_size_everywhere() -> list[tuple[str, dict[str, str]]]:
    """(storefront item id, shipTo) for every priced size of the demo catalog in every ship-to
    location that sells it."""
    from shop.models import Country, Price, Size

    locations = []
    for country in Country.objects.filter(pricelist__isnull=False).prefetch_related("states"):
        states = [s.code for s in country.states.all()] or [None]
        locations += [
            (country, {"country": country.code, **({"state": s} if s else {})}) for s in states
        ]
    priced = set(Price.objects.values_list("display_item_id", "pricelist_id"))
    return [
        (f"{size.variant.display_item.id}-{size.id}", ship_to)
        for size in Size.objects.select_related("variant__display_item").filter(
            variant__display_item__published=True
        )
        for country, ship_to in locations
        if (size.variant.display_item.id, country.pricelist_id) in priced
    ]


def test_many_new_variants_in_one_batch_are_created_in_bulk_jobs_with_their_figures(
    sandbox, api_client, settings
):
    from backinstock.models import BackInStockVariant
    from klaviyo_sync.selectors import back_in_stock_payload_data, integration_settings_get

    settings.SUBSCRIBE_RATE_PER_CLIENT = "none"
    settings.SUBSCRIBE_RATE_PER_EMAIL = "none"
    for item, ship_to in _every_sold_size_everywhere():
        body = {"item": item, "shipTo": ship_to, "email": "ann@example.com"}
        assert api_client.post(SUBSCRIBE, body, format="json").status_code == 201
    variants = list(BackInStockVariant.objects.select_related("product"))
    items = {v.product.external_id for v in variants}
    assert len(items) >= 10 and len(variants) >= 10  # enough for the bulk path

    result = subscriptions_dispatch()

    assert result.outcomes == {"subscribed": len(variants)}
    state = sandbox.snapshot()
    calls = state["calls"]
    assert calls.get("POST /api/catalog-item-bulk-create-jobs", 0) >= 1
    assert calls.get("POST /api/catalog-variant-bulk-create-jobs", 0) >= 1
    assert "POST /api/catalog-variants" not in calls
    assert "POST /api/catalog-items" not in calls
    assert set(state["items"]) >= items
    expected = {
        data.external_id: data.inventory_quantity
        for _, data in back_in_stock_payload_data(
            variants=list(
                BackInStockVariant.objects.select_related(
                    "size", "product__display_item__variant__product", "product__country"
                )
            ),
            settings_record=integration_settings_get(),
        )
    }
    assert {k: state["variants"][k]["inventory_quantity"] for k in expected} == expected
    subscribed_to = {
        s["variant_id"].rsplit(":::", 1)[-1] for s in state["back_in_stock_subscriptions"]
    }
    assert subscribed_to == set(expected)

    # The next batch finds them remembered: no object call at all.
    Subscription.objects.update(status="pending", subscription_sent_at=None)
    before = dict(sandbox.snapshot()["calls"])
    subscriptions_dispatch()
    after = sandbox.snapshot()["calls"]
    catalog_calls = {k: n - before.get(k, 0) for k, n in after.items() if "catalog" in k}
    assert {k: n for k, n in catalog_calls.items() if n} == {}


def test_a_profile_job_klaviyo_cannot_find_is_closed_and_pushes_go_on(sandbox, api_client, caplog):
    assert subscribe(api_client, "ann@example.com").status_code == 201
    subscriptions_dispatch()  # Ann subscribed; her profile's job is open
    [job] = ProfileImportJob.objects.all()
    sandbox.add_fault(
        "error", status=404, count=1000, path_prefix="/api/profile-bulk-import-jobs/", method="GET"
    )
    assert subscribe(api_client, "bob@example.com").status_code == 201

    with caplog.at_level("WARNING", logger="klaviyo_sync"):
        result = subscriptions_dispatch()

    assert result.outcomes == {"subscribed": 1}  # Bob's push went on
    job.refresh_from_db()
    assert job.finished_at is not None and job.status == "lost"
    assert "lost" in job.entries.get().error
    assert any("profile import job" in r.getMessage() for r in caplog.records)
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


def test_profile_jobs_that_cannot_be_read_or_sent_do_not_stop_the_pushes(sandbox, api_client):
    sandbox.add_fault("drop", count=1000, path_prefix="/api/profile-bulk-import-jobs")
    assert subscribe(api_client, "ann@example.com").status_code == 201

    assert subscriptions_dispatch().outcomes == {"subscribed": 1}
    assert Subscription.objects.get().profile_sent_at is None  # follows once Klaviyo answers

    sandbox.clear_faults()
    subscriptions_dispatch()
    time.sleep(0.2)
    subscriptions_dispatch()
    assert Subscription.objects.get().profile_sent_at is not None


def test_a_refused_key_keeps_subscriptions_pending_without_using_up_their_attempts(
    sandbox, api_client
):
    assert subscribe(api_client, "ann@example.com").status_code == 201
    sandbox.add_fault("error", status=401, count=1000, path_prefix="/api/")

    for _ in range(3):
        Subscription.objects.update(push_claimed_until=None)  # its retry's time has come
        assert subscriptions_dispatch().outcomes == {"key-refused": 1}
    subscription = Subscription.objects.get()
    assert (subscription.status, subscription.attempts) == ("pending", 0)
    assert "401" in subscription.last_error

    sandbox.clear_faults()
    Subscription.objects.update(push_claimed_until=None)
    assert subscriptions_dispatch().outcomes == {"subscribed": 1}


def test_the_sweep_s_pushes_use_no_attempt_while_the_settings_allow_no_request(
    sandbox, api_client, settings
):
    from klaviyo_sync.tasks import push_subscription

    assert subscribe(api_client, "ann@example.com").status_code == 201
    settings.KLAVIYO_API_URL = "not a url"

    assert [push_subscription(Subscription.objects.get().id) for _ in range(3)] == [
        "not-configured"
    ] * 3
    assert Subscription.objects.get().attempts == 0
