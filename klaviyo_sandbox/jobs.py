"""Catalog bulk jobs: queued, then processing, then complete after about `job_seconds`.

Each job's clock starts when it is created, so many jobs progress side by side as at Klaviyo (up
to 500 in progress); they are applied to the catalog strictly in the order they were created.
Not thread-safe by itself: the store calls it while holding its lock.
"""

from __future__ import annotations

import secrets
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from .catalog import PLURALS, Catalog, CatalogError, catalog_id, external_id_of, missing_detail
from .errors import iso_now

OPERATIONS = ("create", "update", "delete")
MAX_JOBS_IN_PROGRESS = 500
JOB_RETENTION = timedelta(days=7)
# Crockford's base 32, the alphabet of Klaviyo's ULID-style ids.
ID_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def ulid_like() -> str:
    """A random 26-character id in the style of Klaviyo's (`01GDDKASAP8TKDDA2GRZDSVP4H`)."""
    return "01" + "".join(secrets.choice(ID_ALPHABET) for _ in range(24))


@dataclass
class Job:
    id: str
    kind: str
    operation: str
    resources: list[dict[str, Any]]
    started: float
    created_at: str
    status: str = "queued"
    completed_count: int = 0
    failed_count: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    completed_at: str | None = None
    expires_at: str | None = None
    total_count: int = 0
    # The catalog ids the job names, kept after the resources are let go on completion.
    references: list[str] = field(default_factory=list)

    @property
    def type(self) -> str:
        return f"catalog-{self.kind}-bulk-{self.operation}-job"


class JobQueue:
    def __init__(self, job_seconds: float) -> None:
        self.job_seconds = job_seconds
        self.jobs: dict[str, Job] = {}
        self.pending: deque[Job] = deque()

    def clear(self) -> None:
        self.jobs.clear()
        self.pending.clear()

    def add(self, kind: str, operation: str, resources: list[dict[str, Any]], now: float) -> Job:
        job = Job(
            id=ulid_like(),
            kind=kind,
            operation=operation,
            resources=resources,
            started=now,
            created_at=iso_now(),
            total_count=len(resources),
            references=[_reference(operation, resource) for resource in resources],
        )
        self.jobs[job.id] = job
        self.pending.append(job)
        return job

    def in_progress(self) -> int:
        return len(self.pending)

    def next_deadline(self) -> float | None:
        """When the oldest unfinished job next changes status, in monotonic seconds."""
        if not self.pending:
            return None
        job = self.pending[0]
        if job.status == "queued":
            return job.started + self.job_seconds / 2
        return job.started + self.job_seconds

    def advance(self, now: float, catalog: Catalog) -> None:
        """Move every job whose time has come on: queued -> processing -> complete, in order."""
        while self.pending:
            job = self.pending[0]
            if now >= job.started + self.job_seconds:
                self.pending.popleft()
                self._apply(job, catalog)
            elif now >= job.started + self.job_seconds / 2:
                job.status = "processing"
                # Later jobs started later; only their first half may also have passed.
                for later in list(self.pending)[1:]:
                    if now < later.started + self.job_seconds / 2:
                        break
                    later.status = "processing"
                return
            else:
                return

    def _apply(self, job: Job, catalog: Catalog) -> None:
        """Apply the job's resources one by one; an element's failure does not fail the job."""
        plural = PLURALS[job.kind]
        for index, resource in enumerate(job.resources):
            try:
                if job.operation == "create":
                    catalog.create(job.kind, resource)
                    job.completed_count += 1
                    continue
                raw_id = str(resource.get("id") or "")
                external_id = external_id_of(raw_id)
                if external_id is None:
                    raise CatalogError(404, "not_found", missing_detail(job.kind, raw_id))
                if job.operation == "update":
                    catalog.update(job.kind, external_id, resource)
                else:
                    catalog.delete(job.kind, external_id)
                job.completed_count += 1
            except CatalogError as error:
                job.failed_count += 1
                job.errors.append(
                    {
                        "id": None,
                        "code": None,
                        "title": None,
                        "detail": error.detail,
                        "source": {"pointer": f"/data/attributes/{plural}/data/{index}"},
                    }
                )
        finished = datetime.now(UTC)
        job.resources = []  # applied; a 100,000-item sync need not keep them all in memory
        job.status = "complete"
        job.completed_at = finished.isoformat(timespec="milliseconds")
        job.expires_at = (finished + JOB_RETENTION).isoformat(timespec="milliseconds")

    def counts(self) -> dict[str, int]:
        counts = {"queued": 0, "processing": 0, "complete": 0, "cancelled": 0}
        for job in self.jobs.values():
            counts[job.status] += 1
        return counts


def _reference(operation: str, resource: dict[str, Any]) -> str:
    if operation == "create":
        return catalog_id(str((resource.get("attributes") or {}).get("external_id")))
    return str(resource.get("id"))


def job_document(job: Job, base_url: str) -> dict[str, Any]:
    """The job resource, shaped as `PostCatalogVariantCreateJobResponse` and its siblings."""
    self_url = f"{base_url}/api/catalog-{job.kind}-bulk-{job.operation}-jobs/{job.id}"
    references = [{"type": f"catalog-{job.kind}", "id": ref} for ref in job.references]
    data = {
        "type": job.type,
        "id": job.id,
        "attributes": {
            "status": job.status,
            "created_at": job.created_at,
            "total_count": job.total_count,
            "completed_count": job.completed_count,
            "failed_count": job.failed_count,
            "completed_at": job.completed_at,
            "errors": list(job.errors),
            "expires_at": job.expires_at,
        },
        "relationships": {PLURALS[job.kind]: {"data": references}},
        "links": {"self": self_url},
    }
    return {"data": data, "links": {"self": self_url}}
