"""Subscribing and erasing (backinstock.services), and the ``erase_person`` command."""

import hashlib
import hmac

import pytest
from django.core.management import CommandError, call_command

from backinstock.models import ErasureRecord, ProfileDeletionRequest, Subscription
from backinstock.services import (
    _Resolved,
    _subscription_insert_portable,
    _variant_create,
    person_erase,
    subscription_create,
)
from config.api.errors import InvalidInput

pytestmark = pytest.mark.usefixtures("catalog")


def resolved(catalog, email: str) -> _Resolved:
    return _Resolved(
        display_item_id=12366,
        size_id=23400,
        country_id=catalog.sweden.id,
        country_code="SE",
        state_id=None,
        state_code=None,
        language_id=catalog.swedish.id,
        email=email,
    )


def test_the_portable_insert_creates_once_and_finds_the_repeat(catalog):
    assert _subscription_insert_portable(resolved=resolved(catalog, "ann@example.com")) is None

    _variant_create(resolved=resolved(catalog, "ann@example.com"))
    new_id, created = _subscription_insert_portable(resolved=resolved(catalog, "ann@example.com"))
    repeat_id, repeated_created = _subscription_insert_portable(
        resolved=resolved(catalog, "ann@example.com")
    )

    assert (created, repeated_created) == (True, False)
    assert repeat_id == new_id


# --- Erasure --------------------------------------------------------------------------------------


def subscribe(email: str, country: str = "SE", state: str | None = None) -> None:
    subscription_create(
        item="12366-23400", country_code=country, state_code=state, email=email, language_code=None
    )


@pytest.fixture
def two_people(back_in_stock_on):
    subscribe("ann@example.com")
    subscribe("Ann@Example.com", country="US", state="NY")
    subscribe("bob@example.com")


def test_an_erasure_is_audited_with_a_keyed_hash_of_the_address_never_the_address(
    two_people, settings
):
    settings.ERASURE_AUDIT_SECRET = "audit-secret"

    record = person_erase(email=" ANN@example.com", source="shop-api", delete_klaviyo_profile=False)

    assert record.subscriptions_deleted == 2
    assert list(Subscription.objects.values_list("email", flat=True)) == ["bob@example.com"]
    unsalted = hashlib.sha256(b"ann@example.com").hexdigest()
    assert record.email_hash != unsalted
    assert "ann@example.com" not in str(list(ErasureRecord.objects.values())).lower()
    settings.ERASURE_AUDIT_SECRET = "another-secret"
    assert not hmac.compare_digest(
        record.email_hash,
        person_erase(
            email="ann@example.com", source="shop-api", delete_klaviyo_profile=False
        ).email_hash,
    )


def test_erasing_a_non_address_is_refused_and_audits_nothing(two_people):
    with pytest.raises(InvalidInput) as refused:
        person_erase(email="not an email", source="command", delete_klaviyo_profile=False)

    assert list(refused.value.errors) == ["email"]
    assert Subscription.objects.count() == 3
    assert not ErasureRecord.objects.exists()


def test_the_klaviyo_profile_deletion_is_stored_in_the_erasure_s_transaction(two_people):
    record = person_erase(email="ann@example.com", source="command", delete_klaviyo_profile=True)

    request = ProfileDeletionRequest.objects.get()
    assert (request.email, request.erasure_id) == ("ann@example.com", record.id)
    assert record.klaviyo_deletion_requested is True


def test_the_command_erases_and_says_how_many(two_people, capsys):
    call_command("erase_person", "ANN@example.COM", "--klaviyo")

    out = capsys.readouterr().out
    assert "erased 2 subscriptions" in out
    assert "Klaviyo profile deletion: requested" in out
    record = ErasureRecord.objects.get()
    assert (record.source, record.klaviyo_deletion_requested) == ("command", True)


def test_the_command_refuses_a_non_address_with_a_clear_line_and_a_failing_exit(two_people):
    with pytest.raises(CommandError, match=r"not a valid address.*nothing erased") as refused:
        call_command("erase_person", "not an email")

    assert refused.value.returncode != 0
    assert Subscription.objects.count() == 3
    assert not ErasureRecord.objects.exists()
