"""Subscribers' profile properties (``Language``, ``Currency``) in profile bulk import jobs.

One ``POST /api/profile-import`` per subscriber would cap pushes at 750 a minute, a fifth of the
back-in-stock quota (KLAVIYO.md); a bulk job takes up to 10,000 profiles at 150 jobs a minute.
So a subscription is ``subscribed`` once Klaviyo accepted its back-in-stock subscription, and
its profile follows: gathered into one job per dispatch, followed until Klaviyo finishes it,
with Klaviyo's per-profile errors recorded on the subscription and retried later.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import timedelta

from django.db.models import Count, Exists, OuterRef, Q
from django.utils import timezone

from backinstock.models import Subscription, SubscriptionStatus
from klaviyo_sync.accounts import current_account
from klaviyo_sync.client import KlaviyoClient, KlaviyoError, KlaviyoNotConfigured
from klaviyo_sync.models import (
    ProfileImportEntry,
    ProfileImportJob,
    PushAttempt,
    PushOutcome,
    PushStep,
)
from klaviyo_sync.payloads import profile_bulk_import_body, profile_properties_body
from klaviyo_sync.services.leases import lease_acquire, lease_release
from klaviyo_sync.services.sent import klaviyo_says_missing

logger = logging.getLogger(__name__)

PROFILES_PER_JOB = 10_000
MAX_JOB_BYTES = 5 * 1024 * 1024 - 4 * 1024  # room for the envelope
MAX_PROFILE_ATTEMPTS = 8
RETRY_FAILED_PROFILE_AFTER = timedelta(seconds=60)
FINISHED = frozenset({"complete", "cancelled"})
SEND_LEASE = "klaviyo:profiles-send"
WAIT_POLL_SECONDS = 0.2


def profiles_send(
    *, client: KlaviyoClient, subscription_ids: list[int] | None = None
) -> ProfileImportJob | None:
    """Send the profiles of subscribed subscriptions whose profile is not in Klaviyo yet.

    At most ``PROFILES_PER_JOB`` profiles (and 5 MB) in one job; none that is already in an
    unfinished job, none that failed less than a minute ago, none that failed
    ``MAX_PROFILE_ATTEMPTS`` times. ``subscription_ids`` limits it to these. Returns the job, or
    None when there was nothing to send (or another process is sending).
    """
    holder = lease_acquire(name=SEND_LEASE, seconds=60)
    if holder is None:
        return None
    try:
        return _send(client=client, subscription_ids=subscription_ids)
    finally:
        lease_release(name=SEND_LEASE, holder=holder)


def _send(*, client: KlaviyoClient, subscription_ids: list[int] | None) -> ProfileImportJob | None:
    now = timezone.now()
    entries = ProfileImportEntry.objects.filter(subscription=OuterRef("pk"))
    in_open_job = entries.filter(job__finished_at__isnull=True)
    failed_lately = entries.exclude(error="").filter(
        job__finished_at__gt=now - RETRY_FAILED_PROFILE_AFTER
    )
    candidates = (
        Subscription.objects.filter(
            status=SubscriptionStatus.SUBSCRIBED, profile_sent_at__isnull=True
        )
        .exclude(Exists(in_open_job))
        .exclude(Exists(failed_lately))
        .annotate(failures=Count("profile_imports", filter=~Q(profile_imports__error="")))
        .filter(failures__lt=MAX_PROFILE_ATTEMPTS)
        .select_related("language", "variant__product__country__pricelist")
        .order_by("id")
    )
    if subscription_ids is not None:
        candidates = candidates.filter(id__in=subscription_ids)
    profiles, members, size = [], [], 0
    for subscription in candidates[:PROFILES_PER_JOB]:
        country = subscription.variant.product.country
        profile = profile_properties_body(
            email=subscription.email,
            language=subscription.language.code,
            currency=country.pricelist.currency if country.pricelist else None,
            country_code=country.code,
        )["data"]
        size += len(json.dumps(profile)) + 1
        if size > MAX_JOB_BYTES:
            break
        profiles.append(profile)
        members.append(subscription.id)
    if not profiles:
        return None
    answer = client.profile_bulk_import_create(body=profile_bulk_import_body(profiles=profiles))
    job = ProfileImportJob.objects.create(
        account=current_account(),
        job_id=str(answer.get("id")),
        status=str((answer.get("attributes") or {}).get("status") or "queued"),
    )
    ProfileImportEntry.objects.bulk_create(
        [ProfileImportEntry(job=job, subscription_id=i) for i in members], batch_size=1000
    )
    return job


def profile_jobs_follow(*, client: KlaviyoClient, wait_seconds: float = 0.0) -> int:
    """Read the unfinished profile jobs once (or until they finish, up to ``wait_seconds``);
    record what became of each profile. Returns how many jobs finished.

    A job Klaviyo answers it does not have (404) is closed as ``lost``, its profiles sent again in
    a new job a minute later, like refused ones; a job that cannot be read now (a timeout, a 5xx)
    is left for the next call, logged once per call at WARNING. Raises only
    ``KlaviyoNotConfigured``.
    """
    deadline = time.monotonic() + wait_seconds
    finished = 0
    while True:
        open_jobs = list(
            ProfileImportJob.objects.filter(account=current_account(), finished_at__isnull=True)
        )
        for job in open_jobs:
            try:
                answer = client.profile_bulk_import_get(job_id=job.job_id)
                status = str((answer.get("attributes") or {}).get("status") or "")
                if status in FINISHED:
                    _record_finished(client=client, job=job, status=status)
                    finished += 1
            except KlaviyoNotConfigured:
                raise
            except KlaviyoError as exc:
                if not klaviyo_says_missing(exc):
                    # Read again at the next dispatch; the pushes go on meanwhile.
                    logger.warning("profile import job %s not read: %s", job.job_id, exc)
                    continue
                _record_lost(job=job, error=exc)
                finished += 1
        if not open_jobs or finished == len(open_jobs) or time.monotonic() >= deadline:
            return finished
        time.sleep(WAIT_POLL_SECONDS)


def _record_lost(*, job: ProfileImportJob, error: KlaviyoError) -> None:
    detail = f"the profile import job was lost by Klaviyo ({error.status}); sent again"
    logger.warning("profile import job %s lost by Klaviyo: %s", job.job_id, error)
    now = timezone.now()
    job.entries.update(error=detail)
    PushAttempt.objects.bulk_create(
        [
            PushAttempt(
                subscription_id=entry.subscription_id,
                step=PushStep.PROFILE,
                outcome=PushOutcome.RETRY,
                error=detail,
            )
            for entry in job.entries.all()
        ],
        batch_size=1000,
    )
    job.status = "lost"
    job.finished_at = now
    job.save(update_fields=["status", "finished_at"])


def _record_finished(*, client: KlaviyoClient, job: ProfileImportJob, status: str) -> None:
    errors: dict[str, str] = {}
    for error in client.profile_bulk_import_errors(job_id=job.job_id):
        attributes = error.get("attributes") or {}
        email = str((attributes.get("original_payload") or {}).get("email") or "").lower()
        errors[email] = str(attributes.get("detail") or attributes.get("title") or "refused")
    now = timezone.now()
    accepted = []
    history = []
    for entry in job.entries.select_related("subscription"):
        detail = errors.get(entry.subscription.email.lower())
        if status == "cancelled" and detail is None:
            detail = "the profile import job was cancelled by Klaviyo"
        history.append(
            PushAttempt(
                subscription_id=entry.subscription_id,
                step=PushStep.PROFILE,
                outcome=PushOutcome.ACCEPTED if detail is None else PushOutcome.RETRY,
                error=(detail or "")[:2000],
            )
        )
        if detail is None:
            accepted.append(entry.subscription_id)
        else:
            entry.error = detail[:2000]
            entry.save(update_fields=["error"])
            Subscription.objects.filter(id=entry.subscription_id).update(
                last_error=f"profile properties refused by Klaviyo: {detail}"[:2000]
            )
    Subscription.objects.filter(id__in=accepted).update(profile_sent_at=now)
    PushAttempt.objects.bulk_create(history, batch_size=1000)
    job.status = status
    job.finished_at = now
    job.save(update_fields=["status", "finished_at"])
