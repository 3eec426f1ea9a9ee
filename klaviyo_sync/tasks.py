"""Celery entry points: ids in, rows re-read, one service called (STYLE.md §5)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from celery import shared_task
from celery.app.task import Task
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from klaviyo_sync.client import KlaviyoNotConfigured, KlaviyoPermanentError, KlaviyoRetryableError
from klaviyo_sync.retry import backoff_seconds, task_countdown
from klaviyo_sync.selectors import integration_settings_get
from klaviyo_sync.services.catalog import CatalogSyncBusy, catalog_sync_run
from klaviyo_sync.services.stock import (
    StockPushBusy,
    stock_changes_done,
    stock_changes_take,
    stock_figures_push,
)
from klaviyo_sync.services.subscriptions import (
    MAX_PUSH_ATTEMPTS,
    subscription_ids_to_sweep,
    subscription_push,
    subscription_push_failed,
    subscription_push_retry_later,
)

logger = logging.getLogger(__name__)

SWEEP_BATCH = 1000
INCREMENTAL_SYNC_QUEUED_KEY = "klaviyo:incremental-sync-queued"
STOCK_PUSH_QUEUED_KEY = "klaviyo:stock-push-queued"
BUSY_RETRY_SECONDS = 5
MAX_STOCK_PUSH_RETRIES = 8


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def push_subscription(self: Task, subscription_id: int) -> str:
    """Push one subscription; retryable failures come back with backoff, then give up."""
    from backinstock.models import Subscription

    try:
        return subscription_push(subscription_id=subscription_id).value
    except KlaviyoNotConfigured:
        logger.warning("KLAVIYO_API_KEY is not set: subscription %s stays pending", subscription_id)
        return "not-configured"
    except KlaviyoPermanentError as exc:
        subscription_push_failed(subscription_id=subscription_id, reason=str(exc))
        return "failed"
    except KlaviyoRetryableError as exc:
        attempts = (
            Subscription.objects.filter(id=subscription_id)
            .values_list("attempts", flat=True)
            .first()
            or 0
        )
        if attempts >= MAX_PUSH_ATTEMPTS:
            subscription_push_failed(
                subscription_id=subscription_id,
                reason=f"gave up after {attempts} attempts: {exc}",
            )
            return "failed"
        delay = backoff_seconds(attempts, retry_after=exc.retry_after)
        subscription_push_retry_later(subscription_id=subscription_id, delay_seconds=delay)
        raise self.retry(countdown=task_countdown(delay), exc=exc) from exc


@shared_task
def sweep_pending_subscriptions() -> int:
    """Re-queue pending subscriptions that nobody is pushing (the database is the outbox)."""
    older_than = timedelta(seconds=settings.KLAVIYO_SWEEP_AFTER_SECONDS)
    ids = subscription_ids_to_sweep(older_than=older_than, limit=SWEEP_BATCH)
    for subscription_id in ids:
        push_subscription.delay(subscription_id)
    return len(ids)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def sync_catalog(full: bool = True) -> str:
    """A catalog sync, if catalog sync is switched on and no other sync is running."""
    if not integration_settings_get().catalog_sync_enabled:
        return "disabled"
    if not full:
        cache.delete(INCREMENTAL_SYNC_QUEUED_KEY)
    try:
        run = catalog_sync_run(full=full)
    except CatalogSyncBusy:
        return "busy"
    except KlaviyoNotConfigured:
        logger.warning("KLAVIYO_API_KEY is not set: catalog sync skipped")
        return "not-configured"
    return str(run.state)


def _queue_once(*, key: str, countdown: float, send: Callable[[], object]) -> None:
    """Queue a task once per burst: the first of many triggers within ``countdown`` queues it."""
    if cache.add(key, "1", timeout=int(countdown) + 60):
        try:
            send()
        except Exception:
            cache.delete(key)  # let the next trigger try again; the outbox keeps the work
            raise


def sync_catalog_incremental_soon(*, coalesce_seconds: float) -> None:
    """One incremental catalog sync for a burst of display item changes."""
    _queue_once(
        key=INCREMENTAL_SYNC_QUEUED_KEY,
        countdown=coalesce_seconds,
        send=lambda: sync_catalog.apply_async(
            kwargs={"full": False}, countdown=task_countdown(coalesce_seconds)
        ),
    )


def push_stock_changes_soon(*, coalesce_seconds: float) -> None:
    """One stock push for a burst of stock changes."""
    _queue_once(
        key=STOCK_PUSH_QUEUED_KEY,
        countdown=coalesce_seconds,
        send=lambda: push_stock_changes.apply_async(countdown=task_countdown(coalesce_seconds)),
    )


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def push_stock_changes(self: Task, reconcile: bool = False) -> str:
    """Push the figures of sizes noted as changed (or, reconciling, of every waiting variant)."""
    if not reconcile:
        cache.delete(STOCK_PUSH_QUEUED_KEY)
    started = timezone.now()
    size_ids = None if reconcile else stock_changes_take(started_before=started)
    if size_ids == []:
        return "nothing to do"
    try:
        result = stock_figures_push(size_ids=size_ids)
    except StockPushBusy as exc:
        raise self.retry(countdown=BUSY_RETRY_SECONDS, exc=exc) from exc
    except KlaviyoNotConfigured:
        logger.warning("KLAVIYO_API_KEY is not set: stock figures not pushed")
        return "not-configured"
    except KlaviyoRetryableError as exc:
        if self.request.retries >= MAX_STOCK_PUSH_RETRIES:
            logger.error("stock push gave up for now; the reconciliation will repair: %s", exc)
            return "gave-up"
        delay = backoff_seconds(self.request.retries + 1, retry_after=exc.retry_after)
        raise self.retry(countdown=task_countdown(delay), exc=exc) from exc
    if size_ids is not None:
        stock_changes_done(size_ids=size_ids, started_before=started)
    return f"{result.variants_changed} changed in {result.jobs} jobs"
