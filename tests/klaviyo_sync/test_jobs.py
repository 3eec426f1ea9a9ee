"""Running bulk jobs to completion (``BulkJobRunner``), against a fake Klaviyo and clock."""

import threading
from typing import Any

from klaviyo_sync.services.jobs import BulkJobRunner, JobOutcome


class SlowJobs:
    """Klaviyo whose jobs complete ``seconds`` after they were created, on a fake clock."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.now = 0.0
        self.created: dict[str, float] = {}
        self.polled_at: list[float] = []
        self.lock = threading.Lock()

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def bulk_job_create(self, *, kind: str, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            job_id = f"job-{len(self.created)}"
            self.created[job_id] = self.now
        return {"id": job_id, "attributes": {"status": "queued"}}

    def bulk_job_get(self, *, kind: str, operation: str, job_id: str) -> dict[str, Any]:
        with self.lock:
            self.polled_at.append(self.now)
            done = self.now - self.created[job_id] >= self.seconds
        return {"id": job_id, "attributes": {"status": "complete" if done else "processing"}}


def run_one_job(klaviyo: SlowJobs) -> list[JobOutcome]:
    outcomes: list[JobOutcome] = []
    runner = BulkJobRunner(
        klaviyo,  # type: ignore[arg-type]
        on_outcome=outcomes.append,
        clock=klaviyo.clock,
        sleep=klaviyo.sleep,
    )
    runner.submit(kind="variant", operation="update", resources=[{"id": "$custom:::$default:::1"}])
    runner.drain()
    return outcomes


def test_a_job_still_running_is_seen_done_within_half_its_age():
    klaviyo = SlowJobs(seconds=3.0)

    outcomes = run_one_job(klaviyo)

    assert [outcome.succeeded for outcome in outcomes] == [["1"]]
    assert 3.0 <= klaviyo.polled_at[-1] <= 3.0 * 1.5
    assert len(klaviyo.polled_at) <= 12


def test_a_short_job_is_seen_done_soon_after_it_completes():
    klaviyo = SlowJobs(seconds=0.5)

    run_one_job(klaviyo)

    assert 0.5 <= klaviyo.polled_at[-1] <= 0.75
