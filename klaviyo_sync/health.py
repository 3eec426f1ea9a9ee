"""Health at a glance, for the admin's index: is the work getting to Klaviyo?

Read-only; every figure is one cheap query on an indexed column. What stands out in colour is
decided here, so the page and its tests agree:

- pending subscriptions whose oldest waits more than ``PENDING_STALE_SECONDS`` (the sweep runs
  every minute and a push takes seconds, so older means the worker is not getting through);
- any failed subscription;
- a last full catalog sync that failed, or none completed within twice the reconciliation
  interval (``KLAVIYO_CATALOG_RECONCILE_SECONDS``), or none ever;
- a worker or the scheduler whose last heartbeat (``operations``) is older than
  ``OPERATIONS_HEARTBEAT_MAX_AGE_SECONDS``, or that never beat.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, Max, Min
from django.utils import timezone

from backinstock.models import Subscription, SubscriptionStatus
from klaviyo_sync.accounts import current_account
from klaviyo_sync.models import (
    CatalogObjectKind,
    CatalogSyncRun,
    CatalogSyncState,
    Restock,
    SentCatalogObject,
)
from operations.selectors import heartbeat_ages

PENDING_STALE_SECONDS = 15 * 60
CATALOG_RECONCILE_ENTRY = "catalog-sync-reconciliation"  # in CELERY_BEAT_SCHEDULE
CATALOG_RECONCILE_DEFAULT_SECONDS = 6 * 3600.0


@dataclass(frozen=True)
class IntegrationHealth:
    pending: int
    oldest_pending_at: datetime | None
    pending_stale: bool
    failed: int
    last_full_sync: CatalogSyncRun | None
    full_sync_alarming: bool
    last_stock_push_at: datetime | None
    last_restock_at: datetime | None
    # Seconds since the youngest heartbeat of a worker and of the scheduler; None: never seen.
    worker_heartbeat_age: float | None
    scheduler_heartbeat_age: float | None
    heartbeat_max_age: float

    @property
    def worker_stale(self) -> bool:
        return self.worker_heartbeat_age is None or (
            self.worker_heartbeat_age > self.heartbeat_max_age
        )

    @property
    def scheduler_stale(self) -> bool:
        return self.scheduler_heartbeat_age is None or (
            self.scheduler_heartbeat_age > self.heartbeat_max_age
        )

    @property
    def oldest_pending_age(self) -> timedelta | None:
        return timezone.now() - self.oldest_pending_at if self.oldest_pending_at else None


def _reconcile_seconds() -> float:
    schedule = getattr(settings, "CELERY_BEAT_SCHEDULE", {})
    entry = schedule.get(CATALOG_RECONCILE_ENTRY) or {}
    return float(entry.get("schedule", CATALOG_RECONCILE_DEFAULT_SECONDS))


def integration_health_get() -> IntegrationHealth:
    """The figures of the admin's health panel, and which of them are alarming."""
    now = timezone.now()
    pending = Subscription.objects.filter(status=SubscriptionStatus.PENDING).aggregate(
        count=Count("id"),
        oldest=Min("created_at"),
    )
    failed = Subscription.objects.filter(status=SubscriptionStatus.FAILED).count()
    last_full = CatalogSyncRun.objects.filter(full=True).order_by("-started_at").first()
    last_completed = (
        CatalogSyncRun.objects.filter(full=True, state=CatalogSyncState.COMPLETED)
        .order_by("-started_at")
        .values_list("started_at", flat=True)
        .first()
    )
    full_sync_alarming = (
        last_full is None
        or last_full.state == CatalogSyncState.FAILED
        or last_completed is None
        or now - last_completed > timedelta(seconds=2 * _reconcile_seconds())
    )
    oldest = pending["oldest"]
    heartbeats = heartbeat_ages()
    return IntegrationHealth(
        pending=pending["count"],
        oldest_pending_at=oldest,
        pending_stale=oldest is not None
        and now - oldest > timedelta(seconds=PENDING_STALE_SECONDS),
        failed=failed,
        last_full_sync=last_full,
        full_sync_alarming=full_sync_alarming,
        last_stock_push_at=SentCatalogObject.objects.filter(
            account=current_account(),
            kind=CatalogObjectKind.VARIANT,
            inventory_quantity__isnull=False,
        ).aggregate(at=Max("sent_at"))["at"],
        last_restock_at=Restock.objects.aggregate(at=Max("sent_at"))["at"],
        worker_heartbeat_age=heartbeats.get("worker"),
        scheduler_heartbeat_age=heartbeats.get("scheduler"),
        heartbeat_max_age=float(settings.OPERATIONS_HEARTBEAT_MAX_AGE_SECONDS),
    )
