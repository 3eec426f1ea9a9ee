"""Everything the sandbox holds, behind one lock, and the thread that moves bulk jobs along."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

from .catalog import Catalog, external_id_of, missing_detail
from .errors import ApiError, iso_now
from .jobs import MAX_JOBS_IN_PROGRESS, Job, JobQueue
from .profile_jobs import ProfileJobs
from .profiles import Profiles


class Store:
    """The sandbox's state. Every read and write holds `lock` (one lock for everything)."""

    def __init__(self, *, job_seconds: float) -> None:
        self.lock = threading.RLock()
        self._wake = threading.Condition(self.lock)
        self.catalog = Catalog()
        self.jobs = JobQueue(job_seconds)
        self.profiles = Profiles()
        self.profile_jobs = ProfileJobs(job_seconds)
        self.subscriptions: list[dict[str, Any]] = []
        self.calls: Counter[str] = Counter()
        self.throttled = 0
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

    def count_call(self, route: str) -> None:
        with self.lock:
            self.calls[route] += 1

    def count_throttled(self) -> None:
        with self.lock:
            self.throttled += 1

    def reset(self) -> None:
        with self.lock:
            self.catalog.clear()
            self.jobs.clear()
            self.profiles.clear()
            self.profile_jobs.clear()
            self.subscriptions.clear()
            self.calls.clear()
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
                "profiles": self.profiles.snapshot(),
                "deleted_profiles": [dict(d) for d in self.profiles.deleted],
                "calls": dict(self.calls),
                "jobs": {status: counts[status] for status in ("queued", "processing", "complete")},
                "throttled": self.throttled,
            }
