"""Catalog sync (flow 3): Klaviyo's catalog items kept in step with the shop's display items.

The catalog sync owns the real catalog items (``12366``) and nothing else: the back-in-stock
category, virtual items and variants belong to the back-in-stock flow
(``klaviyo_sync.services.back_in_stock_catalog``), and this module never sends them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from klaviyo_sync.accounts import current_account
from klaviyo_sync.client import CatalogKind, KlaviyoClient, KlaviyoError
from klaviyo_sync.models import (
    CatalogSyncFailure,
    CatalogSyncRun,
    CatalogSyncState,
    CatalogSyncTrigger,
    IntegrationSettings,
    PendingCatalogChange,
)
from klaviyo_sync.payloads import (
    catalog_item_attributes,
    catalog_item_create_resource,
    catalog_item_update_resource,
    job_batches,
    payload_hash,
    unpublished_item_attributes,
)
from klaviyo_sync.selectors import catalog_item_data_for, integration_settings_get
from klaviyo_sync.services.jobs import BulkJobRunner, JobOutcome
from klaviyo_sync.services.leases import lease_acquire, lease_release
from klaviyo_sync.services.sent import (
    CATALOG,
    detail_says_missing,
    sent_forget,
    sent_objects,
    sent_refused,
    sent_remember,
)
from operations.metrics import metric_count, metric_observe
from shop.models import DisplayItem

logger = logging.getLogger(__name__)

SYNC_LEASE = "klaviyo:catalog-sync"
SYNC_LEASE_SECONDS = 2 * 60 * 60
RECORD_EVERY_SECONDS = 1.0
ALREADY_EXISTS = "already exists"
# A create answered "already exists" is sent again as an update, and an update answered "does
# not exist" as a create; an item still bouncing after this many rounds counts as failed.
MAX_RESEND_ROUNDS = 2

ProgressCallback = Callable[[CatalogSyncRun], None]


class CatalogSyncBusy(Exception):
    """Another catalog sync holds the lease."""


@dataclass(frozen=True)
class _Planned:
    attributes: dict[str, Any]
    payload_hash: str


@dataclass(frozen=True)
class KlaviyoCatalogIds:
    """The external ids Klaviyo's catalog holds, read back page by page."""

    items: frozenset[str]
    variants: frozenset[str]
    categories: frozenset[str]
    reads: int


def klaviyo_catalog_read(*, client: KlaviyoClient) -> KlaviyoCatalogIds:
    """Read back every item, variant and category id Klaviyo holds (catalog-read quota).

    One call per 100 objects (KLAVIYO.md: 100,000 items are 1,000 reads, about 17 s of the
    3,500/min quota).
    """
    found: dict[str, set[str]] = {}
    reads = 0
    kind: CatalogKind
    for kind in ("item", "variant", "category"):
        found[kind] = set()
        for page in client.catalog_external_ids(kind=kind):
            reads += 1
            found[kind].update(page)
    return KlaviyoCatalogIds(
        items=frozenset(found["item"]),
        variants=frozenset(found["variant"]),
        categories=frozenset(found["category"]),
        reads=reads,
    )


def sent_objects_missing_forget(*, present: KlaviyoCatalogIds) -> int:
    """Forget every remembered object (any owner) that Klaviyo's catalog no longer holds.

    Returns how many were forgotten; their owners create them again on their next send.
    """
    forgotten = 0
    for kind, ids in (
        ("item", present.items),
        ("variant", present.variants),
        ("category", present.categories),
    ):
        remembered = set(
            sent_objects(owner=None, kind=kind)
            .filter(exists_in_klaviyo=True)
            .values_list("external_id", flat=True)
        )
        missing = remembered - ids
        if missing:
            forgotten += sent_forget(kind=kind, external_ids=missing)
    return forgotten


@dataclass
class _Tally:
    """What became of each display item considered: one outcome per external id."""

    total: set[str] = field(default_factory=set)
    done: set[str] = field(default_factory=set)
    unchanged: set[str] = field(default_factory=set)
    failed: dict[str, str] = field(default_factory=dict)

    def copy_to(self, run: CatalogSyncRun) -> None:
        run.total = len(self.total)
        run.done = len(self.done)
        run.unchanged = len(self.unchanged)
        run.failed = len(self.failed)
        run.not_sent = run.total - run.done - run.unchanged - run.failed


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
        self.calls_before = run.calls  # the read-back's, and those of earlier runners
        self.tally = _Tally()
        self.planned: dict[str, _Planned] = {}
        self.resend_as_update: list[str] = []
        self.resend_as_create: list[str] = []
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
        sent = {
            external_id: (value, exists)
            for external_id, value, exists in sent_objects(
                owner=CATALOG, kind="item", external_ids=external_ids
            ).values_list("external_id", "payload_hash", "exists_in_klaviyo")
        }
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
            self.tally.total.add(external_id)
            previous_hash, exists = sent.get(external_id, ("", False))
            if not data.published and not exists:
                self.tally.unchanged.add(external_id)  # never in Klaviyo, nothing to withdraw
                continue
            attributes = catalog_item_attributes(data)
            self._plan(external_id, attributes, previous_hash, exists, creates, updates)
            self._flush(creates, updates, force=False)
        # Sent before, gone from the shop since: unpublished in Klaviyo, never deleted, so that
        # emails already out keep their product. Only display items: the catalog sync's own.
        for external_id, (previous_hash, exists) in sent.items():
            if external_id not in seen and exists:
                self.tally.total.add(external_id)
                attributes = unpublished_item_attributes()
                self._plan(external_id, attributes, previous_hash, exists, creates, updates)
        self._flush(creates, updates, force=True)
        self.runner.drain()
        for _ in range(MAX_RESEND_ROUNDS):
            if not (self.resend_as_update or self.resend_as_create):
                break
            resend = [
                *(("update", i) for i in self.resend_as_update),
                *(("create", i) for i in self.resend_as_create),
            ]
            self.resend_as_update, self.resend_as_create = [], []
            self.calls_before += self.runner.calls
            self.runner = BulkJobRunner(self.client, on_outcome=self._on_outcome)
            for operation in ("create", "update"):
                resources = [self._resource(i, operation) for op, i in resend if op == operation]
                for batch in job_batches(resources):
                    self.runner.submit(kind="item", operation=operation, resources=batch)
            self.runner.drain()
        for external_id in [*self.resend_as_update, *self.resend_as_create]:
            self._fail(external_id, "Klaviyo kept refusing both a create and an update")

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
            self.tally.unchanged.add(external_id)
            return
        self.planned[external_id] = _Planned(attributes=attributes, payload_hash=value)
        (updates if exists else creates).append(
            self._resource(external_id, "update" if exists else "create")
        )

    def _resource(self, external_id: str, operation: str) -> dict[str, Any]:
        attributes = self.planned[external_id].attributes
        if operation == "update":
            return catalog_item_update_resource(external_id=external_id, attributes=attributes)
        return catalog_item_create_resource(external_id=external_id, attributes=attributes)

    def _flush(
        self, creates: list[dict[str, Any]], updates: list[dict[str, Any]], *, force: bool
    ) -> None:
        for operation, pending in (("create", creates), ("update", updates)):
            while len(pending) >= 100 or (force and pending):
                batch = job_batches(pending[:100])[0]
                del pending[: len(batch)]
                self.runner.submit(kind="item", operation=operation, resources=batch)  # type: ignore[arg-type]

    def _fail(self, external_id: str, detail: str) -> None:
        self.tally.failed[external_id] = detail
        self.unrecorded_failures[external_id] = detail

    def _on_outcome(self, outcome: JobOutcome) -> None:
        accepted = {i: self.planned[i].payload_hash for i in outcome.succeeded if i in self.planned}
        for external_id, detail in outcome.failed.items():
            if outcome.operation == "create" and ALREADY_EXISTS in detail:
                self.resend_as_update.append(external_id)  # Klaviyo has it: update instead
            elif outcome.operation == "update" and detail_says_missing(detail):
                # Klaviyo lost it (deleted by a person, or another account): create it again.
                sent_forget(kind="item", external_ids=[external_id])
                if self.planned[external_id].attributes.get("published") is False:
                    self.tally.unchanged.add(external_id)  # gone, and only to be withdrawn
                else:
                    self.resend_as_create.append(external_id)
            else:
                self._fail(external_id, detail)
        self.unrecorded_accepted.update(accepted)
        self.tally.done.update(accepted)
        for external_id in accepted:
            self.planned.pop(external_id, None)
        self.run.calls = self.calls_before + self.runner.calls
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
        self.tally.copy_to(self.run)
        self.run.calls = self.calls_before + self.runner.calls
        with transaction.atomic():
            sent_remember(owner=CATALOG, kind="item", hashes=self.unrecorded_accepted)
            sent_refused(owner=CATALOG, kind="item", failures=self.unrecorded_failures)
            CatalogSyncFailure.objects.bulk_create(
                [
                    CatalogSyncFailure(run=self.run, external_id=external_id, detail=detail)
                    for external_id, detail in self.unrecorded_failures.items()
                ],
                batch_size=1000,
            )
            self.run.save(
                update_fields=["total", "done", "failed", "unchanged", "not_sent", "calls"]
            )
        self.unrecorded_accepted = {}
        self.unrecorded_failures = {}
        self.recorded_at = now


def catalog_sync_run(
    *,
    full: bool,
    trigger: str = CatalogSyncTrigger.COMMAND,
    read_back: bool | None = None,
    client: KlaviyoClient | None = None,
    progress: ProgressCallback | None = None,
) -> CatalogSyncRun:
    """Bring Klaviyo's catalog items in step with the shop's display items.

    ``full`` considers every display item (the initial sync, the on-demand one and the periodic
    reconciliation); otherwise only those changed since the last run (``PendingCatalogChange``).
    A full sync first reads Klaviyo's catalog back (``read_back``, on by default for full syncs)
    and forgets every remembered object Klaviyo no longer has, so that this run re-creates the
    lost catalog items and the back-in-stock flow its lost virtual objects
    (``back_in_stock_objects_repair``, called here after the items).

    Items are created or updated in bulk jobs of at most 100 and 5 MB, split by whether Klaviyo
    already has them; nothing is sent for an item whose payload did not change since Klaviyo
    accepted it. "Already exists" on a create is sent again as an update, "does not exist" on an
    update as a create. Unpublished and deleted display items become unpublished in Klaviyo.
    Every item considered is counted once (``done + unchanged + failed + not_sent == total``);
    each failure is recorded with Klaviyo's detail (``CatalogSyncFailure``). A run with a failed
    element ends ``failed``; the first full sync that completes with none unlocks back in stock.
    Only one sync runs at a time, in any process (``CatalogSyncBusy`` otherwise).
    """
    client = client or KlaviyoClient.from_settings()
    holder = lease_acquire(name=SYNC_LEASE, seconds=SYNC_LEASE_SECONDS)
    if holder is None:
        raise CatalogSyncBusy("another catalog sync is running")
    started = timezone.now()
    run = CatalogSyncRun.objects.create(
        full=full, trigger=trigger, state=CatalogSyncState.RUNNING, account=current_account()
    )
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
        if full and (read_back if read_back is not None else True):
            present = klaviyo_catalog_read(client=client)
            run.missing_repaired = sent_objects_missing_forget(present=present)
            run.calls += present.reads
            run.save(update_fields=["missing_repaired", "calls"])
        sync = _CatalogSync(
            run=run, client=client, settings_record=settings_record, progress=progress
        )
        sync.sync(display_item_ids=display_item_ids)
        if display_item_ids is not None:
            PendingCatalogChange.objects.filter(
                display_item_id__in=display_item_ids, created_at__lte=started
            ).delete()
        if full:
            from klaviyo_sync.services.back_in_stock_catalog import back_in_stock_objects_repair

            back_in_stock_objects_repair(client=client)
        run.state = CatalogSyncState.FAILED if run.failed else CatalogSyncState.COMPLETED
        if run.failed:
            run.error = f"Klaviyo refused {run.failed} of {run.total} items; see the failures."
    except Exception as exc:  # recorded on the run, then raised for the caller
        run.state = CatalogSyncState.FAILED
        run.error = str(exc)[:2000]
        if isinstance(exc, KlaviyoError):  # Klaviyo's answer: a fact to report, not a bug
            logger.warning("catalog sync %s failed: %s", run.id, exc)
        else:
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
        lease_release(name=SYNC_LEASE, holder=holder)
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


def catalog_changes_due(*, window: timedelta) -> bool:
    """Whether the oldest noted display item change is at least ``window`` old."""
    return PendingCatalogChange.objects.filter(created_at__lte=timezone.now() - window).exists()


def catalog_sync_progress_percent(run: CatalogSyncRun) -> int:
    if not run.total:
        return 100 if run.state == CatalogSyncState.COMPLETED else 0
    return int(100 * (run.done + run.failed + run.unchanged) / run.total)
