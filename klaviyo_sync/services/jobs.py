"""Running catalog bulk jobs to completion: submit, poll, and attribute element errors."""

from __future__ import annotations

import logging
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from klaviyo_sync.client import BulkOperation, CatalogKind, KlaviyoClient, external_id_of
from klaviyo_sync.payloads import bulk_job_body
from klaviyo_sync.retry import call_with_retries

logger = logging.getLogger(__name__)

# Klaviyo allows 500 jobs in progress per account; stay well inside it.
MAX_JOBS_IN_FLIGHT = 200
FIRST_POLL_AFTER_SECONDS = 0.2
POLL_INTERVAL_SECONDS = 0.5
MAX_POLL_INTERVAL_SECONDS = 5.0
JOB_TIMEOUT_SECONDS = 30 * 60
FINISHED_STATUSES = frozenset({"complete", "cancelled"})
_BACKTICKED = re.compile(r"`([^`]+)`")
_POINTER_INDEX = re.compile(r"/data/(\d+)(?:/|$)")


@dataclass
class JobOutcome:
    """What became of each resource of one job: accepted, or failed with Klaviyo's detail."""

    kind: CatalogKind
    operation: BulkOperation
    resources: list[dict[str, Any]]
    succeeded: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    status: str = ""


@dataclass
class _InFlight:
    job_id: str
    kind: CatalogKind
    operation: BulkOperation
    resources: list[dict[str, Any]]
    submitted_at: float
    next_poll_at: float
    interval: float = POLL_INTERVAL_SECONDS


def resource_external_id(resource: dict[str, Any]) -> str:
    if "id" in resource:
        return external_id_of(str(resource["id"]))
    return str(resource.get("attributes", {}).get("external_id", ""))


def job_outcome_from(
    *,
    kind: CatalogKind,
    operation: BulkOperation,
    resources: list[dict[str, Any]],
    job: dict[str, Any],
) -> JobOutcome:
    """Match a finished job's errors to its resources.

    Klaviyo names the failed element by ``source.pointer`` (``.../data/3``) when it can; real
    answers may leave ``id``, ``code`` and ``title`` null, so the external id quoted in
    ``detail`` is the second clue. An error that names no resource is logged. A cancelled job
    fails every resource it did not report on.
    """
    attributes = job.get("attributes") or {}
    ids = [resource_external_id(r) for r in resources]
    known = set(ids)
    failed: dict[str, str] = {}
    for error in attributes.get("errors") or []:
        detail = str(error.get("detail") or error.get("title") or "element failed")
        pointer = str((error.get("source") or {}).get("pointer") or "")
        match = _POINTER_INDEX.search(pointer)
        target = None
        if match and int(match.group(1)) < len(ids):
            target = ids[int(match.group(1))]
        else:
            quoted = [q for q in _BACKTICKED.findall(detail) if q in known]
            target = quoted[0] if quoted else None
        if target is not None:
            failed.setdefault(target, detail)
        else:
            logger.warning("bulk job %s: an error names no element: %s", job.get("id"), detail)
    status = str(attributes.get("status") or "")
    if status == "cancelled":
        for external_id in ids:
            failed.setdefault(external_id, "the bulk job was cancelled by Klaviyo")
    return JobOutcome(
        kind=kind,
        operation=operation,
        resources=resources,
        succeeded=[i for i in ids if i not in failed],
        failed=failed,
        status=status,
    )


class BulkJobRunner:
    """Submits jobs as they come and reports each one's outcome once it has finished.

    Jobs are polled oldest first, each no sooner than its own backoff allows; ``submit`` waits
    for a finished job when too many are in flight. ``drain`` waits for all of them.
    """

    def __init__(
        self,
        client: KlaviyoClient,
        *,
        on_outcome: Callable[[JobOutcome], None],
        max_in_flight: int = MAX_JOBS_IN_FLIGHT,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.on_outcome = on_outcome
        self.max_in_flight = max_in_flight
        self.calls = 0
        self._clock = clock
        self._sleep = sleep
        self._in_flight: deque[_InFlight] = deque()

    def submit(
        self, *, kind: CatalogKind, operation: BulkOperation, resources: list[dict[str, Any]]
    ) -> None:
        while len(self._in_flight) >= self.max_in_flight:
            self._poll_due(block=True)
        body = bulk_job_body(kind=kind, operation=operation, resources=resources)
        # A retried create that Klaviyo did receive fails its elements as "already exists",
        # which the caller turns into updates; a retried update is harmless.
        job = call_with_retries(
            lambda: self.client.bulk_job_create(kind=kind, operation=operation, body=body)
        )
        self.calls += 1
        now = self._clock()
        self._in_flight.append(
            _InFlight(
                job_id=str(job.get("id")),
                kind=kind,
                operation=operation,
                resources=resources,
                submitted_at=now,
                next_poll_at=now + FIRST_POLL_AFTER_SECONDS,
            )
        )
        self._poll_due(block=False)

    def drain(self) -> None:
        while self._in_flight:
            self._poll_due(block=True)

    def _poll_due(self, *, block: bool) -> None:
        """Poll the oldest job if its time has come (or wait for it when ``block``)."""
        if not self._in_flight:
            return
        entry = self._in_flight[0]
        now = self._clock()
        if entry.next_poll_at > now:
            if not block:
                return
            self._sleep(entry.next_poll_at - now)
        job = self.client.bulk_job_get(
            kind=entry.kind, operation=entry.operation, job_id=entry.job_id
        )
        self.calls += 1
        status = str((job.get("attributes") or {}).get("status") or "")
        if status in FINISHED_STATUSES:
            self._in_flight.popleft()
            self.on_outcome(
                job_outcome_from(
                    kind=entry.kind, operation=entry.operation, resources=entry.resources, job=job
                )
            )
            return
        if self._clock() - entry.submitted_at > JOB_TIMEOUT_SECONDS:
            self._in_flight.popleft()
            failed = {
                resource_external_id(r): "the bulk job did not finish in time"
                for r in entry.resources
            }
            self.on_outcome(
                JobOutcome(
                    kind=entry.kind,
                    operation=entry.operation,
                    resources=entry.resources,
                    failed=failed,
                    status=status or "timeout",
                )
            )
            return
        entry.interval = min(entry.interval * 1.5, MAX_POLL_INTERVAL_SECONDS)
        entry.next_poll_at = self._clock() + entry.interval
