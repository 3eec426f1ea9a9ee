"""Erasing a person: our subscriptions, and on request their profile in Klaviyo."""

from __future__ import annotations

from backinstock.models import ErasureRecord
from backinstock.services import subscriptions_erase
from klaviyo_sync.client import KlaviyoClient, KlaviyoError
from klaviyo_sync.payloads import profile_deletion_body
from klaviyo_sync.retry import call_with_retries


def person_erase(
    *, email: str, source: str, delete_klaviyo_profile: bool, client: KlaviyoClient | None = None
) -> ErasureRecord:
    """Erase every subscription of an address and, if asked, ask Klaviyo to delete the profile.

    Klaviyo's data-privacy deletion removes the profile and everything recorded on it, the
    back-in-stock subscriptions included (Klaviyo offers no other way to delete those). The
    audit record (``ErasureRecord``) says what was done and what Klaviyo answered; a refusal
    from Klaviyo is recorded there and raised, after our own data is already gone.
    """
    record = subscriptions_erase(email=email, source=source).record
    if not delete_klaviyo_profile:
        return record
    client = client or KlaviyoClient.from_settings()
    record.klaviyo_deletion_requested = True
    try:
        call_with_retries(
            lambda: client.data_privacy_deletion_create(body=profile_deletion_body(email=email))
        )
    except KlaviyoError as exc:
        record.klaviyo_deletion_result = f"refused: {exc}"[:2000]
        record.save(update_fields=["klaviyo_deletion_requested", "klaviyo_deletion_result"])
        raise
    record.klaviyo_deletion_result = "accepted by Klaviyo"
    record.save(update_fields=["klaviyo_deletion_requested", "klaviyo_deletion_result"])
    return record
