"""Catalog sync (flow 3): Klaviyo's catalog kept in step with the shop's display items."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from klaviyo_sync.client import CatalogKind, KlaviyoClient
from klaviyo_sync.models import (
    CatalogObjectKind,
    CatalogSyncRun,
    CatalogSyncState,
    IntegrationSettings,
    PendingCatalogChange,
    SentCatalogObject,
)
from klaviyo_sync.payloads import (
    BACK_IN_STOCK_CATEGORY_ID,
    back_in_stock_category_create_resource,
    catalog_item_attributes,
    catalog_item_create_resource,
    catalog_item_update_resource,
    job_batches,
    payload_hash,
    single_body,
    unpublished_item_attributes,
)
from klaviyo_sync.retry import call_with_retries
from klaviyo_sync.selectors import catalog_item_data_for, integration_settings_get
from klaviyo_sync.services.jobs import BulkJobRunner, JobOutcome
from operations.metrics import metric_count, metric_observe
from shop.models import DisplayItem

logger = logging.getLogger(__name__)

SYNC_LOCK_KEY = "klaviyo:catalog-sync-lock"
SYNC_LOCK_SECONDS = 2 * 60 * 60
RECORD_EVERY_SECONDS = 1.0
MAX_RECORDED_FAILURES = 200
ALREADY_EXISTS = "already exists"

ProgressCallback = Callable[[CatalogSyncRun], None]


class CatalogSyncBusy(Exception):
    """Another catalog sync holds the lock."""


@dataclass(frozen=True)
class _Planned:
    resource: dict[str, Any]
    payload_hash: str


def _sent_items(*, external_ids: Iterable[str] | None) -> dict[str, tuple[str, bool]]:
    """external id → (hash last accepted, exists in Klaviyo) for catalog items."""
    rows = SentCatalogObject.objects.filter(kind=CatalogObjectKind.ITEM)
    if external_ids is not None:
        rows = rows.filter(external_id__in=list(external_ids))
    return {
        external_id: (payload_hash_value, exists)
        for external_id, payload_hash_value, exists in rows.values_list(
            "external_id", "payload_hash", "exists_in_klaviyo"
        )
    }


def _record_sent(*, kind: CatalogKind, hashes: dict[str, str]) -> None:
    """Remember what Klaviyo accepted, in one upsert."""
    now = timezone.now()
    SentCatalogObject.objects.bulk_create(
        [
            SentCatalogObject(
                kind=kind,
                external_id=external_id,
                payload_hash=value,
                exists_in_klaviyo=True,
                last_error="",
                sent_at=now,
            )
            for external_id, value in hashes.items()
        ],
        update_conflicts=True,
        unique_fields=["kind", "external_id"],
        update_fields=["payload_hash", "exists_in_klaviyo", "last_error", "sent_at"],
    )


def _record_failed(*, kind: CatalogKind, failures: dict[str, str]) -> None:
    SentCatalogObject.objects.bulk_create(
        [
            SentCatalogObject(kind=kind, external_id=external_id, last_error=detail[:2000])
            for external_id, detail in failures.items()
        ],
        update_conflicts=True,
        unique_fields=["kind", "external_id"],
        update_fields=["last_error"],
    )


def back_in_stock_category_ensure(*, client: KlaviyoClient) -> None:
    """The ``backinstock`` category exists in Klaviyo (created once, remembered)."""
    if SentCatalogObject.objects.filter(
        kind=CatalogObjectKind.CATEGORY,
        external_id=BACK_IN_STOCK_CATEGORY_ID,
        exists_in_klaviyo=True,
    ).exists():
        return
    resource = back_in_stock_category_create_resource()
    call_with_retries(lambda: client.catalog_create(kind="category", body=single_body(resource)))
    _record_sent(
        kind="category",
        hashes={BACK_IN_STOCK_CATEGORY_ID: payload_hash(resource["attributes"])},
    )


class _CatalogSync:
    """One run: plans creates and updates, sends them as bulk jobs, records what happened."""

    def __init__(
        self,
        *,
        run: CatalogSyncRun,
        client: KlaviyoClient,
        settings_record: IntegrationSettings,
        progress: ProgressCallback | None,
    ) -> None:
        self.run = run
        self.client = client
        self.settings_record = settings_record
        self.progress = progress
        self.runner = BulkJobRunner(client, on_outcome=self._on_outcome)
        self.planned: dict[str, _Planned] = {}
        self.retry_as_update: list[str] = []
        self.unrecorded_accepted: dict[str, str] = {}
        self.unrecorded_failures: dict[str, str] = {}
        self.recorded_at = time.monotonic()

    def sync(self, *, display_item_ids: list[int] | None) -> None:
        try:
            self._sync(display_item_ids=display_item_ids)
        finally:
            self.runner.close()  # after a failure, let the runner's threads go
            self._record(force=True)  # what Klaviyo accepted before a failure, too

    def _sync(self, *, display_item_ids: list[int] | None) -> None:
        external_ids = None if display_item_ids is None else [str(i) for i in display_item_ids]
        sent = _sent_items(external_ids=external_ids)
        items = DisplayItem.objects.all()
        if display_item_ids is not None:
            items = items.filter(id__in=display_item_ids)
        self.run.total = items.count()
        self.run.save(update_fields=["total"])
        creates: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        seen: set[str] = set()
        for data in catalog_item_data_for(
            display_item_ids=display_item_ids, settings_record=self.settings_record
        ):
            external_id = str(data.display_item_id)
            seen.add(external_id)
            previous_hash, exists = sent.get(external_id, ("", False))
            if not data.published and not exists:
                self.run.unchanged += 1  # never published, nothing to withdraw
                continue
            attributes = catalog_item_attributes(data)
            self._plan(external_id, attributes, previous_hash, exists, creates, updates)
            self._flush(creates, updates, force=False)
        # Sent before, gone from the shop since: unpublished in Klaviyo, never deleted, so that
        # emails already out keep their product.
        for external_id, (previous_hash, exists) in sent.items():
            if external_id not in seen and exists:
                self.run.total += 1
                attributes = unpublished_item_attributes()
                self._plan(external_id, attributes, previous_hash, exists, creates, updates)
        self._flush(creates, updates, force=True)
        self.runner.drain()
        if self.retry_as_update:
            updates = [self._as_update(external_id) for external_id in self.retry_as_update]
            self.retry_as_update = []
            for batch in job_batches(updates):
                self.runner.submit(kind="item", operation="update", resources=batch)
            self.runner.drain()

    def _plan(
        self,
        external_id: str,
        attributes: dict[str, Any],
        previous_hash: str,
        exists: bool,
        creates: list[dict[str, Any]],
        updates: list[dict[str, Any]],
    ) -> None:
        value = payload_hash(attributes)
        if exists and previous_hash == value:
            self.run.unchanged += 1
            return
        if exists:
            resource = catalog_item_update_resource(external_id=external_id, attributes=attributes)
            updates.append(resource)
        else:
            resource = catalog_item_create_resource(external_id=external_id, attributes=attributes)
            creates.append(resource)
        self.planned[external_id] = _Planned(resource=resource, payload_hash=value)

    def _as_update(self, external_id: str) -> dict[str, Any]:
        attributes = dict(self.planned[external_id].resource["attributes"])
        for key in ("external_id", "integration_type", "catalog_type"):
            attributes.pop(key, None)
        return catalog_item_update_resource(external_id=external_id, attributes=attributes)

    def _flush(
        self, creates: list[dict[str, Any]], updates: list[dict[str, Any]], *, force: bool
    ) -> None:
        for operation, pending in (("create", creates), ("update", updates)):
            while len(pending) >= 100 or (force and pending):
                batch = job_batches(pending[:100])[0]
                del pending[: len(batch)]
                self.runner.submit(kind="item", operation=operation, resources=batch)  # type: ignore[arg-type]

    def _on_outcome(self, outcome: JobOutcome) -> None:
        accepted = {i: self.planned[i].payload_hash for i in outcome.succeeded if i in self.planned}
        failures: dict[str, str] = {}
        for external_id, detail in outcome.failed.items():
            if outcome.operation == "create" and ALREADY_EXISTS in detail:
                self.retry_as_update.append(external_id)  # Klaviyo has it: update instead
            else:
                failures[external_id] = detail
        self.unrecorded_accepted.update(accepted)
        self.unrecorded_failures.update(failures)
        for external_id in accepted:
            self.planned.pop(external_id, None)
        self.run.done += len(accepted)
        self.run.failed += len(failures)
        room = MAX_RECORDED_FAILURES - len(self.run.failures)
        self.run.failures.extend(
            {"externalId": external_id, "detail": detail}
            for external_id, detail in list(failures.items())[: max(room, 0)]
        )
        self.run.calls = self.runner.calls
        self._record(force=False)
        if self.progress:
            self.progress(self.run)

    def _record(self, *, force: bool) -> None:
        """Store what Klaviyo accepted and refused, and the run's progress, once a second.

        One transaction per job would wait for a commit per 100 items, a third of the time a
        100,000-item sync spends recording (bench/README.md). Should the process die first, up
        to a second's worth of accepted items are sent again by the next run: as creates,
        answered "already exists", then as updates.
        """
        now = time.monotonic()
        if not force and now - self.recorded_at < RECORD_EVERY_SECONDS:
            return
        with transaction.atomic():
            if self.unrecorded_accepted:
                _record_sent(kind="item", hashes=self.unrecorded_accepted)
            if self.unrecorded_failures:
                _record_failed(kind="item", failures=self.unrecorded_failures)
            self.run.save(
                update_fields=["total", "done", "failed", "unchanged", "calls", "failures"]
            )
        self.unrecorded_accepted = {}
        self.unrecorded_failures = {}
        self.recorded_at = now


def catalog_sync_run(
    *,
    full: bool,
    client: KlaviyoClient | None = None,
    progress: ProgressCallback | None = None,
) -> CatalogSyncRun:
    """Bring Klaviyo's catalog items in step with the shop's display items.

    ``full`` considers every display item (the initial sync, the on-demand one and the periodic
    reconciliation); otherwise only those changed since the last run (``PendingCatalogChange``).
    Items are created or updated in bulk jobs of at most 100 and 5 MB, split by whether Klaviyo
    already has them; nothing is sent for an item whose payload did not change since Klaviyo
    accepted it. A create that Klaviyo answers "already exists" is sent again as an update.
    Unpublished and deleted display items become unpublished in Klaviyo. Element failures are
    recorded on the run with Klaviyo's detail. The first complete full sync unlocks back in
    stock. Only one sync runs at a time (``CatalogSyncBusy`` otherwise).
    """
    client = client or KlaviyoClient.from_settings()
    if not cache.add(SYNC_LOCK_KEY, "1", timeout=SYNC_LOCK_SECONDS):
        raise CatalogSyncBusy("another catalog sync is running")
    started = timezone.now()
    run = CatalogSyncRun.objects.create(full=full, state=CatalogSyncState.RUNNING)
    try:
        settings_record = integration_settings_get()
        if full:
            _settings_state_set(CatalogSyncState.RUNNING)
            display_item_ids = None
        else:
            display_item_ids = list(
                PendingCatalogChange.objects.filter(created_at__lte=started).values_list(
                    "display_item_id", flat=True
                )
            )
        sync = _CatalogSync(
            run=run, client=client, settings_record=settings_record, progress=progress
        )
        back_in_stock_category_ensure(client=client)
        sync.sync(display_item_ids=display_item_ids)
        if display_item_ids is not None:
            PendingCatalogChange.objects.filter(
                display_item_id__in=display_item_ids, created_at__lte=started
            ).delete()
        run.state = CatalogSyncState.COMPLETED
    except Exception as exc:  # recorded on the run, then raised for the caller
        run.state = CatalogSyncState.FAILED
        run.error = str(exc)[:2000]
        logger.exception("catalog sync %s failed", run.id)
        raise
    finally:
        run.finished_at = timezone.now()
        run.save()
        metric_observe(
            "catalog_sync_duration_seconds",
            (run.finished_at - started).total_seconds(),
            full=full,
            state=run.state,
        )
        metric_count("catalog_sync_failed_items", run.failed)
        if full:
            _settings_state_set(run.state, completed=run.state == CatalogSyncState.COMPLETED)
        cache.delete(SYNC_LOCK_KEY)
    return run


def _settings_state_set(state: str, *, completed: bool = False) -> None:
    updates: dict[str, Any] = {"catalog_sync_state": state}
    record = integration_settings_get()
    if completed and record.first_full_sync_completed_at is None:
        updates["first_full_sync_completed_at"] = timezone.now()
    IntegrationSettings.objects.filter(pk=record.pk).update(**updates)


def catalog_changes_record(*, display_item_ids: Iterable[int]) -> None:
    """Note display items to re-send; a newer change moves an existing note's time forward."""
    now = timezone.now()
    PendingCatalogChange.objects.bulk_create(
        [PendingCatalogChange(display_item_id=i, created_at=now) for i in display_item_ids],
        update_conflicts=True,
        unique_fields=["display_item_id"],
        update_fields=["created_at"],
    )


def catalog_sync_progress_percent(run: CatalogSyncRun) -> int:
    if not run.total:
        return 100 if run.state == CatalogSyncState.COMPLETED else 0
    return int(100 * (run.done + run.failed + run.unchanged) / run.total)
