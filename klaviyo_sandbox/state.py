"""Everything the sandbox holds, behind one lock, and the thread that moves bulk jobs along."""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from typing import Any

from .catalog import KINDS, PLURALS, Catalog, catalog_id, external_id_of, missing_detail
from .emails import display_item_id_of, restock_email
from .errors import ApiError, iso_now
from .jobs import MAX_JOBS_IN_PROGRESS, Job, JobQueue
from .profile_jobs import ProfileJobs
from .profiles import Profiles

MAX_FAILED_CALLS = 50


class Store:
    """The sandbox's state. Every read and write holds `lock` (one lock for everything)."""

    def __init__(self, *, job_seconds: float) -> None:
        self.lock = threading.RLock()
        self._wake = threading.Condition(self.lock)
        self.catalog = Catalog(on_restock=self._restock_emails_add)
        self.jobs = JobQueue(job_seconds)
        self.profiles = Profiles()
        self.profile_jobs = ProfileJobs(job_seconds)
        self.subscriptions: list[dict[str, Any]] = []
        # What Klaviyo's back-in-stock flow would have sent (see emails.py), oldest first.
        self.emails: list[dict[str, Any]] = []
        self.calls: Counter[str] = Counter()
        self.throttled = 0
        # The latest refused or dropped API calls, newest last: {at, status, route, detail}.
        self.failed_calls: deque[dict[str, Any]] = deque(maxlen=MAX_FAILED_CALLS)
        self._worker: threading.Thread | None = None
        self._stopping = False

    # --- the job worker -----------------------------------------------------------------------

    def start_worker(self) -> None:
        with self.lock:
            self._stopping = False
        self._worker = threading.Thread(target=self._work, name="sandbox-jobs", daemon=True)
        self._worker.start()

    def stop_worker(self) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
        if self._worker is not None:
            self._worker.join(timeout=5)
            self._worker = None

    def _work(self) -> None:
        with self._wake:
            while not self._stopping:
                self.jobs.advance(time.monotonic(), self.catalog)
                deadline = self.jobs.next_deadline()
                timeout = None if deadline is None else max(deadline - time.monotonic(), 0.001)
                self._wake.wait(timeout)

    def sync(self) -> None:
        """Bring jobs up to date before a read, so an answer never lags behind the clock."""
        with self.lock:
            self.jobs.advance(time.monotonic(), self.catalog)

    # --- writes ---------------------------------------------------------------------------------

    def job_add(self, *, kind: str, operation: str, resources: list[dict[str, Any]]) -> Job:
        with self._wake:
            self.jobs.advance(time.monotonic(), self.catalog)
            if self.jobs.in_progress() >= MAX_JOBS_IN_PROGRESS:
                # Klaviyo allows at most 500 jobs in progress per account.
                self.throttled += 1
                raise ApiError(
                    429,
                    "throttled",
                    f"At most {MAX_JOBS_IN_PROGRESS} jobs may be in progress at one time.",
                    headers={"Retry-After": "1"},
                )
            job = self.jobs.add(kind, operation, resources, time.monotonic())
            self._wake.notify_all()
            return job

    def subscribe_back_in_stock(
        self, *, email: str | None, phone: str | None, variant_id: str, channels: list[str]
    ) -> None:
        """Record one accepted subscription (never deduplicated) and make sure the profile exists.

        As at Klaviyo, subscribing creates the profile when there is none yet.
        """
        with self.lock:
            self.jobs.advance(time.monotonic(), self.catalog)
            external_id = external_id_of(variant_id)
            if external_id is None or external_id not in self.catalog.objects["variant"]:
                raise ApiError(
                    400,
                    "invalid",
                    missing_detail("variant", external_id or variant_id),
                    pointer="/data/relationships/variant/data/id",
                )
            if self.profiles.find(email=email, phone_number=phone) is None:
                self.profiles.upsert(
                    profile_id=None,
                    attributes={k: v for k, v in (("email", email), ("phone_number", phone)) if v},
                )
            self.subscriptions.append(
                {"email": email, "variant_id": variant_id, "channels": channels, "at": iso_now()}
            )

    def _restock_emails_add(self, variant_external_id: str) -> None:
        """One email per subscriber waiting on the variant (by address), who then waits no more.

        Called by the catalog, under the lock, when the variant's figure rises from 0.
        """
        variant_id = catalog_id(variant_external_id)
        variant = self.catalog.objects["variant"][variant_external_id]
        item = self.catalog.objects["item"].get(display_item_id_of(variant_external_id))
        told: set[str] = set()
        for subscription in self.subscriptions:
            if subscription["variant_id"] != variant_id or subscription.get("notified_at"):
                continue
            subscription["notified_at"] = iso_now()
            email = subscription["email"]
            if not email or email.lower() in told:
                continue
            told.add(email.lower())
            self.emails.append(
                restock_email(
                    email=email,
                    variant_external_id=variant_external_id,
                    variant=dict(variant.attributes),
                    item=None if item is None else dict(item.attributes),
                    profile=self.profiles.find(email=email),
                )
            )

    def count_call(self, route: str) -> None:
        with self.lock:
            self.calls[route] += 1

    def count_throttled(self) -> None:
        with self.lock:
            self.throttled += 1

    def failed_call_add(self, *, status: int | None, route: str, detail: str) -> None:
        """Remember one refused call (`status` None: the connection was dropped)."""
        with self.lock:
            self.failed_calls.append(
                {"at": iso_now(), "status": status, "route": route, "detail": detail}
            )

    def catalog_delete(self, *, wanted: dict[str, list[str]]) -> dict[str, dict[str, list[str]]]:
        """Delete catalog objects by kind and external id (see `Account.catalog_delete`)."""
        deleted: dict[str, list[str]] = {PLURALS[kind]: [] for kind in KINDS}
        missing: dict[str, list[str]] = {PLURALS[kind]: [] for kind in KINDS}
        with self.lock:
            self.jobs.advance(time.monotonic(), self.catalog)
            for kind in KINDS:
                for external_id in dict.fromkeys(wanted.get(kind, ())):
                    if external_id not in self.catalog.objects[kind]:
                        if external_id not in deleted[PLURALS[kind]]:
                            missing[PLURALS[kind]].append(external_id)
                        continue
                    taken = self.catalog.delete(kind, external_id)
                    deleted[PLURALS[kind]].append(external_id)
                    deleted["variants"].extend(taken)
        return {"deleted": deleted, "missing": missing}

    def catalog_clear(self) -> dict[str, int]:
        """Delete every catalog object; answers how many of each kind went."""
        with self.lock:
            self.jobs.advance(time.monotonic(), self.catalog)
            counts = {PLURALS[kind]: len(self.catalog.objects[kind]) for kind in KINDS}
            self.catalog.clear()
        return counts

    def reset(self) -> None:
        with self.lock:
            self.catalog.clear()
            self.jobs.clear()
            self.profiles.clear()
            self.profile_jobs.clear()
            self.subscriptions.clear()
            self.emails.clear()
            self.calls.clear()
            self.failed_calls.clear()
            self.throttled = 0

    # --- reads ----------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Plain data for `GET /_sandbox/state` (a copy: safe to keep and compare)."""
        with self.lock:
            self.jobs.advance(time.monotonic(), self.catalog)
            counts = self.jobs.counts()
            return {
                **self.catalog.snapshot(),
                "back_in_stock_subscriptions": [dict(s) for s in self.subscriptions],
                "back_in_stock_emails": [dict(e) for e in self.emails],
                "profiles": self.profiles.snapshot(),
                "deleted_profiles": [dict(d) for d in self.profiles.deleted],
                "calls": dict(self.calls),
                "jobs": {status: counts[status] for status in ("queued", "processing", "complete")},
                "throttled": self.throttled,
                "failed_calls": [dict(call) for call in self.failed_calls],
            }
