"""Sending erasures' profile deletions to Klaviyo (the worker's half of ``person_erase``).

``backinstock`` erases its own rows at once and leaves a ``ProfileDeletionRequest`` when the
person also asked for their Klaviyo profile to go; this module hands each to Klaviyo's
data-privacy deletion, which removes the profile and everything recorded on it, the back-in-stock
subscriptions included (Klaviyo offers no other way to delete those).
"""

from __future__ import annotations

import enum
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from backinstock.models import ProfileDeletionRequest
from klaviyo_sync.client import (
    KEY_REFUSED_STATUSES,
    KlaviyoClient,
    KlaviyoNotConfigured,
    KlaviyoPermanentError,
)
from klaviyo_sync.payloads import profile_deletion_body
from klaviyo_sync.retry import call_with_retries

ERROR_TEXT_LIMIT = 2000
# Tries within one task before leaving the request to the periodic sweep (a minute later).
IN_PROCESS_ATTEMPTS = 3


class ProfileDeletionOutcome(enum.Enum):
    SENT = "sent"
    REFUSED = "refused"
    ALREADY_DONE = "already-done"


def profile_deletion_send(
    *, request_id: int, client: KlaviyoClient | None = None
) -> ProfileDeletionOutcome:
    """Ask Klaviyo to delete the profile of one erasure; then forget the address.

    Accepted: the erasure record says so and the request row (the last copy of the address) is
    deleted. Refused for good (a ``KlaviyoPermanentError`` other than an unset or refused key):
    the refusal is recorded on the erasure, for an operator to see, and the row deleted too.
    Retryable errors, settings that allow no request (``KlaviyoNotConfigured``), a key Klaviyo
    refuses (401, 403) and a request that could not be sent (no answer, ``status`` None)
    propagate with the row kept, so that a retry or the sweep sends it later.
    """
    request = ProfileDeletionRequest.objects.select_related("erasure").filter(id=request_id).first()
    if request is None:
        return ProfileDeletionOutcome.ALREADY_DONE
    client = client or KlaviyoClient.from_settings()
    ProfileDeletionRequest.objects.filter(id=request_id).update(attempts=request.attempts + 1)
    record = request.erasure
    try:
        call_with_retries(
            lambda: client.data_privacy_deletion_create(
                body=profile_deletion_body(email=request.email)
            ),
            attempts=IN_PROCESS_ATTEMPTS,
        )
    except KlaviyoNotConfigured:
        raise
    except KlaviyoPermanentError as exc:
        # Never reached Klaviyo, or Klaviyo refused the key rather than the request: the row
        # (the person's request) waits for the sweep.
        if exc.status is None or exc.status in KEY_REFUSED_STATUSES:
            raise
        record.klaviyo_deletion_result = f"refused: {exc}"[:ERROR_TEXT_LIMIT]
        outcome = ProfileDeletionOutcome.REFUSED
    else:
        record.klaviyo_deletion_result = "accepted by Klaviyo"
        outcome = ProfileDeletionOutcome.SENT
    with transaction.atomic():
        record.save(update_fields=["klaviyo_deletion_result"])
        request.delete()
    return outcome


def profile_deletion_ids_to_sweep(
    *, older_than: timedelta, limit: int, never_tried: bool = False
) -> list[int]:
    """Requests still waiting this long after they were made (``never_tried``: and not tried
    yet, the dispatcher's new work; otherwise their send was lost or failed)."""
    cutoff = timezone.now() - older_than
    waiting = ProfileDeletionRequest.objects.filter(created_at__lte=cutoff).order_by("created_at")
    if never_tried:
        waiting = waiting.filter(attempts=0)
    return list(waiting.values_list("id", flat=True)[:limit])
