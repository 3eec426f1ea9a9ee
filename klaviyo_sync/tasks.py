"""Celery entry points: ids in, rows re-read, one service called (STYLE.md §5)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from celery import shared_task
from celery.app.task import Task
from django.conf import settings
from django.utils import timezone

from klaviyo_sync.client import KlaviyoError, KlaviyoNotConfigured, KlaviyoRetryableError
from klaviyo_sync.models import CatalogSyncTrigger
from klaviyo_sync.retry import backoff_seconds
from klaviyo_sync.selectors import integration_settings_get
from klaviyo_sync.services.back_in_stock_catalog import NotSoldThere
from klaviyo_sync.services.catalog import CatalogSyncBusy, catalog_changes_due, catalog_sync_run
from klaviyo_sync.services.dispatch import subscriptions_dispatch
from klaviyo_sync.services.leases import lease_acquire, lease_is_held
from klaviyo_sync.services.privacy import profile_deletion_ids_to_sweep, profile_deletion_send
from klaviyo_sync.services.stock import (
    StockPushBusy,
    stock_changes_done,
    stock_changes_due,
    stock_changes_take,
    stock_figures_push,
)
from klaviyo_sync.services.subscriptions import (
    subscription_ids_to_sweep,
    subscription_push,
    subscription_push_error,
)

logger = logging.getLogger(__name__)

SWEEP_BATCH = 1000
# Held after a failed stock push: the ticks wait it out (in the database, seen by every worker).
STOCK_PUSH_BACKOFF = "klaviyo:stock-push-backoff"
BACKOFF_ATTEMPT = 4  # up to 8 s of full jitter, at least Klaviyo's Retry-After


@shared_task(acks_late=True, reject_on_worker_lost=True)
def push_subscription(subscription_id: int) -> str:
    """Push one subscription now; a failure is held for a retry with backoff, or ``failed``."""
    try:
        return subscription_push(subscription_id=subscription_id).value
    except (KlaviyoError, NotSoldThere) as exc:
        return subscription_push_error(subscription_id=subscription_id, error=exc)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def dispatch_subscriptions() -> str:
    """The outbox's dispatcher, run every second by the scheduler (services.dispatch)."""
    try:
        result = subscriptions_dispatch()
    except KlaviyoNotConfigured:
        return "not-configured"
    deletions = profile_deletion_ids_to_sweep(
        older_than=timedelta(0), limit=SWEEP_BATCH, never_tried=True
    )
    for request_id in deletions:
        send_profile_deletion(request_id)
    return (
        f"{result.claimed} claimed: {dict(result.outcomes)}; {result.profiles_sent} profiles; "
        f"{len(deletions)} profile deletions"
    )


def _requeue_waiting(ids_to_sweep: Callable[..., list[int]], task: Task) -> int:
    """Queue ``task`` for each outbox row waiting longer than the sweep allows; how many."""
    older_than = timedelta(seconds=settings.KLAVIYO_SWEEP_AFTER_SECONDS)
    ids = ids_to_sweep(older_than=older_than, limit=SWEEP_BATCH)
    for row_id in ids:
        task.delay(row_id)
    return len(ids)


@shared_task
def sweep_pending_subscriptions() -> int:
    """Re-queue pending subscriptions that nobody is pushing (the database is the outbox)."""
    return _requeue_waiting(subscription_ids_to_sweep, push_subscription)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def send_profile_deletion(request_id: int) -> str:
    """Send one erasure's Klaviyo profile deletion; if it cannot go now, the sweep retries it."""
    try:
        return profile_deletion_send(request_id=request_id).value
    except KlaviyoNotConfigured as exc:
        logger.warning("profile deletion %s waits: %s", request_id, exc)
        return "not-configured"
    except KlaviyoError as exc:  # retryable, or not sent at all: not Klaviyo's refusal
        logger.warning("profile deletion %s not sent (%s); the sweep retries it", request_id, exc)
        return "retry-later"


@shared_task
def sweep_profile_deletions() -> int:
    """Re-queue profile deletions still waiting (the request rows are the outbox)."""
    return _requeue_waiting(profile_deletion_ids_to_sweep, send_profile_deletion)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def sync_catalog(full: bool = True, trigger: str | None = None) -> str:
    """A catalog sync, if catalog sync is switched on and no other sync is running.

    Incremental (the scheduler's tick every few seconds): only once the oldest noted display
    item change is ``KLAVIYO_CATALOG_COALESCE_SECONDS`` old, so a burst goes out together.
    ``trigger``: what asked for it (``CatalogSyncTrigger``); the schedule when not given.
    """
    if not integration_settings_get().catalog_sync_enabled:
        return "disabled"
    if not full and not catalog_changes_due(
        window=timedelta(seconds=settings.KLAVIYO_CATALOG_COALESCE_SECONDS)
    ):
        return "nothing due"
    try:
        run = catalog_sync_run(
            full=full,
            trigger=trigger
            or (CatalogSyncTrigger.SCHEDULE if full else CatalogSyncTrigger.CATALOG_CHANGE),
        )
    except CatalogSyncBusy:
        return "busy"
    except KlaviyoNotConfigured as exc:
        logger.warning("catalog sync skipped: %s", exc)
        return "not-configured"
    return str(run.state)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def push_stock_changes(reconcile: bool = False) -> str:
    """Push the figures of sizes noted as changed (or, reconciling, of every waiting variant).

    The scheduler's tick (every ``KLAVIYO_STOCK_TICK_SECONDS``) pushes once no note has come
    for ``KLAVIYO_STOCK_QUIET_SECONDS``, or the oldest note is ``KLAVIYO_STOCK_COALESCE_SECONDS``
    old (``stock_changes_due``), so that a burst of changes goes out in the same variant jobs.
    After a failure the notes stay and the ticks wait out a backoff.
    """
    started = timezone.now()
    if not reconcile and not stock_changes_due(
        quiet=timedelta(seconds=settings.KLAVIYO_STOCK_QUIET_SECONDS),
        window=timedelta(seconds=settings.KLAVIYO_STOCK_COALESCE_SECONDS),
    ):
        return "nothing due"
    if lease_is_held(name=STOCK_PUSH_BACKOFF):
        return "backing off"
    size_ids = None if reconcile else stock_changes_take(started_before=started)
    try:
        result = stock_figures_push(size_ids=size_ids)
    except StockPushBusy:
        return "busy"
    except KlaviyoNotConfigured as exc:
        logger.warning("stock figures not pushed: %s", exc)
        return "not-configured"
    except KlaviyoRetryableError as exc:
        delay = backoff_seconds(BACKOFF_ATTEMPT, retry_after=exc.retry_after)
        lease_acquire(name=STOCK_PUSH_BACKOFF, seconds=delay)
        logger.warning("stock push failed, next try in %.0f s: %s", delay, exc)
        return "retry later"
    if size_ids is not None:
        stock_changes_done(size_ids=size_ids, started_before=started)
    return f"{result.variants_changed} changed in {result.jobs} jobs"
