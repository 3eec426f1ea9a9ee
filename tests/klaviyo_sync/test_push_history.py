"""Honest states and history (the operators' issue, part 4): each subscription keeps its push
attempts, an operator's retry adds to them, and the state says why and what comes next."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from backinstock.models import Subscription
from backinstock.services import subscription_create, subscriptions_retry
from klaviyo_sync.models import CatalogSyncFailure, CatalogSyncRun, PushAttempt
from klaviyo_sync.tasks import push_subscription

pytestmark = pytest.mark.usefixtures("demo_catalog", "back_in_stock_on")


def subscribe() -> int:
    return subscription_create(
        item="12366-23400",
        country_code="SE",
        state_code=None,
        email="ann@example.com",
        language_code=None,
    ).subscription_id


def page(admin_client, subscription_id: int) -> str:
    url = reverse("admin:backinstock_subscription_change", args=[subscription_id])
    return admin_client.get(url).content.decode()


def test_a_refusal_after_one_attempt_reads_klaviyo_refused_and_the_retry_adds_to_the_history(
    sandbox, settings, admin_client
):
    sandbox.add_fault("error", status=400, path_prefix="/api/back-in-stock-subscriptions")
    subscription_id = subscribe()

    assert push_subscription.apply(args=[subscription_id]).get() == "failed"

    html = page(admin_client, subscription_id)
    assert "failed (Klaviyo refused: " in html
    assert "gave up after" not in html
    sandbox.clear_faults()
    subscriptions_retry(subscription_ids=[subscription_id])
    push_subscription.apply(args=[subscription_id])

    history = list(PushAttempt.objects.values_list("step", "outcome"))
    assert history[:2] == [("back-in-stock", "failed"), ("back-in-stock", "accepted")]
    assert ("profile", "accepted") in history
    assert "push attempts (history)" in page(admin_client, subscription_id).lower()


def test_a_pending_subscription_being_retried_shows_its_attempts_and_next_attempt_time(
    sandbox, admin_client
):
    subscription_id = subscribe()
    sandbox.add_fault("error", status=503, path_prefix="/api/back-in-stock-subscriptions")

    assert push_subscription.apply(args=[subscription_id]).get() == "retry"
    later = timezone.now() + timedelta(seconds=30)  # the backoff's jitter may give ~0 s
    Subscription.objects.filter(id=subscription_id).update(push_claimed_until=later)

    subscription = Subscription.objects.get(id=subscription_id)
    html = page(admin_client, subscription_id)
    assert f"pending: attempt {subscription.attempts} failed" in html
    assert f"next attempt at {timezone.localtime(later):%Y-%m-%d %H:%M:%S}" in html
    assert PushAttempt.objects.get().outcome == "retry"


def test_every_failure_of_a_sync_run_is_listed_paginated_from_the_run(admin_client, db):
    run = CatalogSyncRun.objects.create(full=True, state="failed", total=250, failed=250)
    CatalogSyncFailure.objects.bulk_create(
        CatalogSyncFailure(run=run, external_id=str(n), detail="refused") for n in range(250)
    )

    runs = admin_client.get(reverse("admin:klaviyo_sync_catalogsyncrun_changelist"))
    failures_url = reverse("admin:klaviyo_sync_catalogsyncfailure_changelist")
    listed = admin_client.get(failures_url, {"run__id__exact": run.pk, "p": 3})

    assert f"{failures_url}?run__id__exact={run.pk}" in runs.content.decode()
    assert listed.status_code == 200
    assert listed.context["cl"].result_count == 250
    assert len(listed.context["cl"].result_list) == 50  # the third page of 100
