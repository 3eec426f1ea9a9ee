"""Profile bulk import jobs: `POST /api/profile-bulk-import-jobs`, its `GET` and import errors.

A job's profiles are upserted when it is created (each as `/api/profile-import` would); the job
reads `queued`, then `complete` once `job_seconds` have passed, as Klaviyo's jobs take a while.
A profile that cannot be imported (no email, phone number or external id) becomes an
`import-error` carrying its original payload. Not thread-safe by itself: callers hold the
store's lock.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from .errors import ApiError, invalid, iso_now
from .jobs import ulid_like
from .profiles import Profiles

MAX_PROFILES_PER_JOB = 10_000


@dataclass
class ProfileJob:
    id: str
    total: int
    started: float
    created_at: str
    errors: list[dict[str, Any]] = field(default_factory=list)


class ProfileJobs:
    def __init__(self, job_seconds: float) -> None:
        self.job_seconds = job_seconds
        self.jobs: dict[str, ProfileJob] = {}

    def clear(self) -> None:
        self.jobs.clear()

    def add(self, body: Any, profiles: Profiles) -> ProfileJob:
        """Check the body, upsert every good profile, and answer the new job."""
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict) or data.get("type") != "profile-bulk-import-job":
            raise invalid("`type` must be `profile-bulk-import-job`.", "/data/type")
        container = (data.get("attributes") or {}).get("profiles")
        resources = container.get("data") if isinstance(container, dict) else None
        pointer = "/data/attributes/profiles/data"
        if not isinstance(resources, list) or not resources:
            raise invalid("A non-empty list of profiles is required.", pointer)
        if len(resources) > MAX_PROFILES_PER_JOB:
            raise invalid(f"A job takes at most {MAX_PROFILES_PER_JOB} profiles.", pointer)
        job = ProfileJob(
            id=ulid_like(), total=len(resources), started=time.monotonic(), created_at=iso_now()
        )
        for index, resource in enumerate(resources):
            attributes = resource.get("attributes") if isinstance(resource, dict) else None
            try:
                if not isinstance(resource, dict) or resource.get("type") != "profile":
                    raise invalid("`type` must be `profile`.", f"{pointer}/{index}/type")
                if not isinstance(attributes, dict):
                    raise invalid("`attributes` must be an object.", f"{pointer}/{index}")
                profiles.upsert(profile_id=resource.get("id"), attributes=attributes)
            except ApiError as error:
                job.errors.append(
                    {
                        "type": "import-error",
                        "id": ulid_like(),
                        "attributes": {
                            "code": error.code,
                            "title": "Invalid input",
                            "detail": error.detail,
                            "source": {"pointer": f"{pointer}/{index}"},
                            "original_payload": attributes if isinstance(attributes, dict) else {},
                        },
                    }
                )
        self.jobs[job.id] = job
        return job

    def get(self, job_id: str) -> ProfileJob:
        job = self.jobs.get(job_id)
        if job is None:
            raise ApiError(404, "not_found", f"A job with id `{job_id}` does not exist.")
        return job

    def document(self, job: ProfileJob, base_url: str) -> dict[str, Any]:
        done = time.monotonic() - job.started >= self.job_seconds
        failed = len(job.errors) if done else 0
        self_url = f"{base_url}/api/profile-bulk-import-jobs/{job.id}"
        return {
            "data": {
                "type": "profile-bulk-import-job",
                "id": job.id,
                "attributes": {
                    "status": "complete" if done else "queued",
                    "created_at": job.created_at,
                    "total_count": job.total,
                    "completed_count": job.total - failed if done else 0,
                    "failed_count": failed,
                    "completed_at": iso_now() if done else None,
                    "expires_at": None,
                    "started_at": job.created_at,
                },
                "links": {"self": self_url},
            },
            "links": {"self": self_url},
        }
