"""Running catalog bulk jobs to completion: submit, poll, and attribute element errors."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Literal

from klaviyo_sync.client import BulkOperation, CatalogKind, KlaviyoClient, external_id_of
from klaviyo_sync.payloads import bulk_job_body
from klaviyo_sync.retry import call_with_retries

logger = logging.getLogger(__name__)

# Klaviyo allows 500 jobs in progress per account; stay well inside it.
MAX_JOBS_IN_FLIGHT = 200
# Calls of each kind on the wire at once. Each call waits tens to hundreds of milliseconds for
# Klaviyo's answer; a few side by side make the rate limiter, not that wait, the bound, and the
# shared limiter keeps them inside the quota. Creating jobs and reading them have threads of
# their own, so that reads waiting for their quota never hold up writes, nor writes reads.
# Together they stay within requests' pool of 10 connections per host.
WRITE_CONCURRENCY = 4
READ_CONCURRENCY = 4
FIRST_POLL_AFTER_SECONDS = 0.2
MAX_POLL_INTERVAL_SECONDS = 5.0
# A job found unfinished again is next polled once it is this much older (at least the first
# poll's wait later, at most the longest interval), so it is seen done within half its age: a
# backoff growing from 0.75 s saw a job of 0.5 s done only 1.5 s after it was sent.
REPOLL_AGE_GROWTH = 1.5
# Job reads have a quota of their own, as large as job creation's, and a poll that finds the job
# unfinished spends one for nothing. So a job is first polled after the time jobs took lately,
# learned as the run goes: longer after a poll that came too early, a little shorter after each
# one that did not.
EXPECTED_GROWTH = 1.5
EXPECTED_DECAY = 0.98
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


@dataclass(frozen=True)
class _Creating:
    kind: CatalogKind
    operation: BulkOperation
    resources: list[dict[str, Any]]


@dataclass
class _InFlight:
    job_id: str
    kind: CatalogKind
    operation: BulkOperation
    resources: list[dict[str, Any]]
    submitted_at: float
    next_poll_at: float
    polls: int = 0
    polled_at: float = 0.0


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

    The calls to Klaviyo (creating a job, reading one) run on worker threads; everything else,
    ``on_outcome`` included, runs on the caller's thread inside ``submit`` and ``drain``.
    ``submit`` hands the job over and returns; it waits only while enough jobs are already on
    their way or in flight. Each job is polled once it has had the time jobs lately took, then
    each time it is half as old again (``REPOLL_AGE_GROWTH``). ``drain`` waits for all of them;
    ``close`` abandons what is left (the callers' outbox and the next run repair what it leaves
    undone).
    """

    def __init__(
        self,
        client: KlaviyoClient,
        *,
        on_outcome: Callable[[JobOutcome], None],
        max_in_flight: int = MAX_JOBS_IN_FLIGHT,
        write_concurrency: int = WRITE_CONCURRENCY,
        read_concurrency: int = READ_CONCURRENCY,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.on_outcome = on_outcome
        self.max_in_flight = max_in_flight
        self.write_concurrency = write_concurrency
        self.read_concurrency = read_concurrency
        self.calls = 0
        self._clock = clock
        self._sleep = sleep
        self._expected_seconds = FIRST_POLL_AFTER_SECONDS
        self._creating: dict[Future[dict[str, Any]], _Creating] = {}
        self._waiting: list[_InFlight] = []
        self._polling: dict[Future[dict[str, Any]], _InFlight] = {}
        self._executors: dict[str, ThreadPoolExecutor] = {}

    def submit(
        self, *, kind: CatalogKind, operation: BulkOperation, resources: list[dict[str, Any]]
    ) -> None:
        # A few creations queued per thread keep the threads busy while this one plans more.
        while (
            len(self._creating) >= 2 * self.write_concurrency
            or self._in_flight() >= self.max_in_flight
        ):
            self._step(block=True)
        body = bulk_job_body(kind=kind, operation=operation, resources=resources)
        future = self._executor("write").submit(self._create, kind, operation, body)
        self._creating[future] = _Creating(kind=kind, operation=operation, resources=resources)
        self._step(block=False)

    def drain(self) -> None:
        while self._in_flight():
            self._step(block=True)
        self.close()

    def close(self) -> None:
        """Let the threads go; calls not started yet are dropped, jobs in flight forgotten."""
        for executor in self._executors.values():
            executor.shutdown(wait=False, cancel_futures=True)
        self._executors.clear()
        self._creating.clear()
        self._waiting.clear()
        self._polling.clear()

    def _in_flight(self) -> int:
        return len(self._creating) + len(self._waiting) + len(self._polling)

    def _executor(self, purpose: Literal["write", "read"]) -> ThreadPoolExecutor:
        if purpose not in self._executors:
            self._executors[purpose] = ThreadPoolExecutor(
                self.write_concurrency if purpose == "write" else self.read_concurrency,
                thread_name_prefix=f"klaviyo-job-{purpose}",
            )
        return self._executors[purpose]

    # --- on the worker threads: the calls, and nothing else --------------------------------------

    def _create(
        self, kind: CatalogKind, operation: BulkOperation, body: dict[str, Any]
    ) -> dict[str, Any]:
        # A retried create that Klaviyo did receive fails its elements as "already exists",
        # which the caller turns into updates; a retried update is harmless.
        return call_with_retries(
            lambda: self.client.bulk_job_create(kind=kind, operation=operation, body=body)
        )

    def _read(self, kind: CatalogKind, operation: BulkOperation, job_id: str) -> dict[str, Any]:
        # Reading is safe to repeat: a 429 or a 503 on a poll must not fail a whole run.
        return call_with_retries(
            lambda: self.client.bulk_job_get(kind=kind, operation=operation, job_id=job_id)
        )

    # --- on the caller's thread ------------------------------------------------------------------

    def _step(self, *, block: bool) -> None:
        """Start the polls that are due and take in finished calls; ``block``: wait for one."""
        self._start_due_polls()
        if block:
            self._wait()
        self._take_finished()
        self._start_due_polls()

    def _wait(self) -> None:
        """Until a call finishes, or the next poll is due if a read thread is free for it."""
        timeout = None
        if self._waiting and len(self._polling) < self.read_concurrency:
            next_poll_at = min(entry.next_poll_at for entry in self._waiting)
            timeout = max(next_poll_at - self._clock(), 0.0)
        calls = [*self._creating, *self._polling]
        if calls:
            wait(calls, timeout=timeout, return_when=FIRST_COMPLETED)
        elif timeout is not None:
            self._sleep(timeout)

    def _start_due_polls(self) -> None:
        now = self._clock()
        due = sorted(
            (entry for entry in self._waiting if entry.next_poll_at <= now),
            key=lambda entry: entry.next_poll_at,
        )
        for entry in due[: max(self.read_concurrency - len(self._polling), 0)]:
            self._waiting.remove(entry)
            entry.polls += 1
            entry.polled_at = now
            future = self._executor("read").submit(
                self._read, entry.kind, entry.operation, entry.job_id
            )
            self._polling[future] = entry

    def _take_finished(self) -> None:
        for future in [f for f in self._creating if f.done()]:
            creating = self._creating.pop(future)
            job = self._result(future)
            self.calls += 1
            now = self._clock()
            self._waiting.append(
                _InFlight(
                    job_id=str(job.get("id")),
                    kind=creating.kind,
                    operation=creating.operation,
                    resources=creating.resources,
                    submitted_at=now,
                    next_poll_at=now + self._expected_seconds,
                )
            )
        for future in [f for f in self._polling if f.done()]:
            entry = self._polling.pop(future)
            job = self._result(future)
            self.calls += 1
            self._polled(entry, job)

    def _result(self, future: Future[dict[str, Any]]) -> dict[str, Any]:
        try:
            return future.result()
        except BaseException:
            self.close()
            raise

    def _polled(self, entry: _InFlight, job: dict[str, Any]) -> None:
        status = str((job.get("attributes") or {}).get("status") or "")
        finished = status in FINISHED_STATUSES
        if entry.polls == 1:
            if finished:
                self._expected_seconds = max(
                    FIRST_POLL_AFTER_SECONDS, self._expected_seconds * EXPECTED_DECAY
                )
            else:
                age = entry.polled_at - entry.submitted_at
                self._expected_seconds = min(
                    MAX_POLL_INTERVAL_SECONDS,
                    max(self._expected_seconds, age) * EXPECTED_GROWTH,
                )
                # Jobs sent since are younger still: give them as long before their first poll.
                for other in self._waiting:
                    if other.polls == 0:
                        other.next_poll_at = max(
                            other.next_poll_at, other.submitted_at + self._expected_seconds
                        )
        if finished:
            self.on_outcome(
                job_outcome_from(
                    kind=entry.kind, operation=entry.operation, resources=entry.resources, job=job
                )
            )
            return
        if self._clock() - entry.submitted_at > JOB_TIMEOUT_SECONDS:
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
        now = self._clock()
        if entry.polls == 1:  # too early: again once it is as old as jobs now seem to take
            entry.next_poll_at = max(
                now + FIRST_POLL_AFTER_SECONDS, entry.submitted_at + self._expected_seconds
            )
        else:
            age = entry.polled_at - entry.submitted_at
            wait_more = min(
                max(age * (REPOLL_AGE_GROWTH - 1), FIRST_POLL_AFTER_SECONDS),
                MAX_POLL_INTERVAL_SECONDS,
            )
            entry.next_poll_at = now + wait_more
        self._waiting.append(entry)
