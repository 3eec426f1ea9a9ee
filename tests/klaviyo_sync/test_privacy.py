"""Erasing a person: our subscriptions, their Klaviyo profile on request, and the audit."""

import pytest
from django.core.management import CommandError, call_command

from backinstock.models import ErasureRecord, Subscription
from backinstock.services import subscription_create
from klaviyo_sync.services.subscriptions import subscription_push

pytestmark = pytest.mark.usefixtures("demo_catalog", "back_in_stock_on")


def subscribe(email: str, country: str = "SE") -> int:
    return subscription_create(
        item="12366-23400", country_code=country, state_code=None, email=email, language_code=None
    ).subscription_id


def test_the_command_erases_subscriptions_and_the_klaviyo_profile_and_audits_it(sandbox, capsys):
    subscription_push(subscription_id=subscribe("Ann@Example.com"))
    subscribe("ann@example.com", country="DE")
    subscribe("bob@example.com")
    assert "Ann@example.com" in sandbox.snapshot()["profiles"]

    call_command("erase_person", "ANN@example.COM", "--klaviyo")

    assert list(Subscription.objects.values_list("email", flat=True)) == ["bob@example.com"]
    state = sandbox.snapshot()
    assert "Ann@example.com" not in state["profiles"]
    record = ErasureRecord.objects.get()
    assert (record.source, record.subscriptions_deleted) == ("command", 2)
    assert record.klaviyo_deletion_requested is True
    assert record.klaviyo_deletion_result == "accepted by Klaviyo"
    assert record.email_hash == ErasureRecord.hash_of("ann@example.com")
    assert "ann@example.com" not in str(ErasureRecord.objects.values().get()).lower()
    assert "erased 2 subscriptions" in capsys.readouterr().out


def test_without_klaviyo_only_our_data_is_erased(sandbox, capsys):
    subscription_push(subscription_id=subscribe("ann@example.com"))

    call_command("erase_person", "ann@example.com")

    assert capsys.readouterr().out.strip() == "erased 1 subscription"
    assert not Subscription.objects.exists()
    assert "ann@example.com" in sandbox.snapshot()["profiles"]
    assert ErasureRecord.objects.get().klaviyo_deletion_requested is False


def test_a_refused_klaviyo_deletion_is_audited_and_reported(sandbox, settings):
    subscribe("ann@example.com")
    settings.KLAVIYO_API_KEY = "bad-key"

    with pytest.raises(CommandError, match="Klaviyo refused"):
        call_command("erase_person", "ann@example.com", "--klaviyo")

    assert not Subscription.objects.exists()
    record = ErasureRecord.objects.get()
    assert record.klaviyo_deletion_result.startswith("refused:")
    assert "bad-key" not in record.klaviyo_deletion_result


def test_the_shop_api_erasure_is_audited(api_client, settings):
    settings.SHOP_API_KEY = "key"
    subscribe("ann@example.com")

    response = api_client.delete(
        "/api/shop-api/back-in-stock-subscriptions?email=ann@example.com",
        HTTP_API_AUTHORIZATION="key",
    )

    assert response.json() == {"deleted": 1}
    record = ErasureRecord.objects.get()
    assert (record.source, record.subscriptions_deleted) == ("shop-api", 1)
