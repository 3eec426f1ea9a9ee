"""Sending erasures' Klaviyo profile deletions from the worker (klaviyo_sync.services.privacy)."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from backinstock.models import ErasureRecord, ProfileDeletionRequest, Subscription
from backinstock.services import person_erase, subscription_create
from klaviyo_sync import tasks
from klaviyo_sync.client import KlaviyoPermanentError
from klaviyo_sync.services.privacy import (
    ProfileDeletionOutcome,
    profile_deletion_ids_to_sweep,
    profile_deletion_send,
)
from klaviyo_sync.services.subscriptions import subscription_push

pytestmark = pytest.mark.usefixtures("demo_catalog", "back_in_stock_on")


def subscribe(email: str, country: str = "SE") -> int:
    return subscription_create(
        item="12366-23400", country_code=country, state_code=None, email=email, language_code=None
    ).subscription_id


def erase_with_profile(email: str) -> ErasureRecord:
    return person_erase(email=email, source="command", delete_klaviyo_profile=True)


def test_the_worker_deletes_the_profile_and_then_forgets_the_address(sandbox):
    subscription_push(subscription_id=subscribe("Ann@Example.com"))
    subscribe("ann@example.com", country="DE")
    subscribe("bob@example.com")
    assert "ann@example.com" in sandbox.snapshot()["profiles"]

    record = erase_with_profile("ANN@example.COM")
    assert sandbox.snapshot()["profiles"].keys() >= {"ann@example.com"}  # not in the request
    outcome = profile_deletion_send(request_id=ProfileDeletionRequest.objects.get().id)

    assert outcome is ProfileDeletionOutcome.SENT
    assert "ann@example.com" not in sandbox.snapshot()["profiles"]
    assert list(Subscription.objects.values_list("email", flat=True)) == ["bob@example.com"]
    record.refresh_from_db()
    assert (record.subscriptions_deleted, record.klaviyo_deletion_requested) == (2, True)
    assert record.klaviyo_deletion_result == "accepted by Klaviyo"
    assert not ProfileDeletionRequest.objects.exists()
    assert "ann@example.com" not in str(list(ErasureRecord.objects.values())).lower()


def test_a_refused_deletion_is_recorded_without_the_key_and_the_address_forgotten(
    sandbox, settings
):
    subscribe("ann@example.com")
    record = erase_with_profile("ann@example.com")
    sandbox.add_fault("error", status=400, path_prefix="/api/data-privacy-deletion-jobs")

    outcome = profile_deletion_send(request_id=ProfileDeletionRequest.objects.get().id)

    assert outcome is ProfileDeletionOutcome.REFUSED
    record.refresh_from_db()
    assert record.klaviyo_deletion_result.startswith("refused:")
    assert "ann@example.com" not in record.klaviyo_deletion_result
    assert not ProfileDeletionRequest.objects.exists()


def test_a_deletion_whose_key_klaviyo_refuses_waits_for_the_sweep(sandbox, settings):
    subscribe("ann@example.com")
    erase_with_profile("ann@example.com")
    settings.KLAVIYO_API_KEY = "bad-key"

    with pytest.raises(KlaviyoPermanentError):
        profile_deletion_send(request_id=ProfileDeletionRequest.objects.get().id)

    assert ProfileDeletionRequest.objects.get().email == "ann@example.com"


def test_without_a_key_or_while_klaviyo_is_down_the_request_waits_for_the_sweep(
    sandbox, settings, monkeypatch
):
    monkeypatch.setattr("klaviyo_sync.retry.time.sleep", lambda seconds: None)
    subscribe("ann@example.com")
    erase_with_profile("ann@example.com")
    request_id = ProfileDeletionRequest.objects.get().id

    key, settings.KLAVIYO_API_KEY = settings.KLAVIYO_API_KEY, ""
    assert tasks.send_profile_deletion(request_id) == "not-configured"
    settings.KLAVIYO_API_KEY = key
    sandbox.add_fault("error", status=503, count=100)
    assert tasks.send_profile_deletion(request_id) == "retry-later"

    assert ProfileDeletionRequest.objects.filter(id=request_id).exists()
    ProfileDeletionRequest.objects.update(created_at=timezone.now() - timedelta(hours=1))
    assert profile_deletion_ids_to_sweep(older_than=timedelta(minutes=1), limit=10) == [request_id]


@pytest.mark.parametrize(
    ("setting", "value", "said"),
    [
        ("KLAVIYO_API_URL", "ftp://x", "not-configured"),
        ("KLAVIYO_API_KEY", "pk_with_a_newline\n", "retry-later"),
    ],
    ids=["invalid url", "unsendable key"],
)
def test_a_deletion_that_could_not_be_sent_is_not_recorded_as_refused_and_waits(
    sandbox, settings, setting, value, said
):
    subscribe("ann@example.com")
    record = erase_with_profile("ann@example.com")
    request_id = ProfileDeletionRequest.objects.get().id
    setattr(settings, setting, value)

    assert tasks.send_profile_deletion(request_id) == said

    record.refresh_from_db()
    assert record.klaviyo_deletion_result == "requested; the worker sends it"
    assert ProfileDeletionRequest.objects.filter(id=request_id).exists()


def test_a_request_sent_twice_is_sent_once(sandbox):
    subscribe("ann@example.com")
    erase_with_profile("ann@example.com")
    request_id = ProfileDeletionRequest.objects.get().id

    first = profile_deletion_send(request_id=request_id)
    second = profile_deletion_send(request_id=request_id)

    assert (first, second) == (ProfileDeletionOutcome.SENT, ProfileDeletionOutcome.ALREADY_DONE)


def test_the_sweep_queues_requests_left_waiting(sandbox, monkeypatch):
    subscribe("ann@example.com")
    erase_with_profile("ann@example.com")
    request_id = ProfileDeletionRequest.objects.get().id
    queued: list[int] = []
    monkeypatch.setattr(tasks.send_profile_deletion, "delay", queued.append)

    assert tasks.sweep_profile_deletions() == 0  # just made: its own task is on its way
    ProfileDeletionRequest.objects.update(created_at=timezone.now() - timedelta(hours=1))
    assert tasks.sweep_profile_deletions() == 1
    assert queued == [request_id]


@pytest.mark.django_db(transaction=True)  # the dispatcher's threads see committed rows only
def test_an_address_erased_while_its_push_is_on_the_wire_has_its_profile_deleted_again(sandbox):
    import threading

    from klaviyo_sync.services.dispatch import subscriptions_dispatch

    subscribe("erase.me@example.com")
    sandbox.add_fault("slow", delay=1.5, path_prefix="/api/back-in-stock-subscriptions")
    dispatch = threading.Thread(target=subscriptions_dispatch)
    dispatch.start()
    time.sleep(0.7)  # the back-in-stock call is on the wire
    record = erase_with_profile("erase.me@example.com")
    assert profile_deletion_send(request_id=ProfileDeletionRequest.objects.get().id) is (
        ProfileDeletionOutcome.SENT
    )
    dispatch.join()

    # Klaviyo took the push after the deletion: the profile is back, so it is deleted again.
    assert "erase.me@example.com" in sandbox.snapshot()["profiles"]
    request = ProfileDeletionRequest.objects.get()
    assert (request.erasure_id, request.email) == (record.id, "erase.me@example.com")
    assert profile_deletion_send(request_id=request.id) is ProfileDeletionOutcome.SENT
    assert "erase.me@example.com" not in sandbox.snapshot()["profiles"]
    assert not Subscription.objects.exists()


def test_an_erasure_without_profile_deletion_asks_nothing_more_of_klaviyo():
    from backinstock.services import erased_address_pushed

    subscribe("keep.profile@example.com")
    person_erase(email="keep.profile@example.com", source="command", delete_klaviyo_profile=False)

    assert erased_address_pushed(email="keep.profile@example.com") is False
    assert not ProfileDeletionRequest.objects.exists()
