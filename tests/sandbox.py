"""Run the Klaviyo sandbox (klaviyo_sandbox) inside tests.

    from tests.sandbox import klaviyo_sandbox_fixture  # noqa: F401  (fixture `klaviyo_sandbox`)
    from tests.sandbox import running_sandbox  # a context manager taking Sandbox's options

Both serve on a free port from a background thread, accepting the key API_KEY, with rate limits
off, bulk jobs taking 0.05 s, and Klaviyo's OpenAPI spec checking bodies when the workspace has it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import requests

from klaviyo_sandbox import Sandbox, default_spec_path

API_KEY = "pk_sandbox_test"
REVISION = "2026-07-15"
API_HEADERS = {
    "Authorization": f"Klaviyo-API-Key {API_KEY}",
    "revision": REVISION,
    "Accept": "application/vnd.api+json",
    "Content-Type": "application/vnd.api+json",
}


@contextmanager
def running_sandbox(**options: Any) -> Iterator[Sandbox]:
    """A started Sandbox, stopped afterwards. Options are Sandbox's; test-friendly defaults."""
    options.setdefault("host", "127.0.0.1")
    options.setdefault("api_key", API_KEY)
    options.setdefault("port", 0)
    options.setdefault("rate_limits", False)
    options.setdefault("job_seconds", 0.05)
    options.setdefault("spec_path", default_spec_path())
    sandbox = Sandbox(**options).start()
    try:
        yield sandbox
    finally:
        sandbox.stop()


@pytest.fixture(name="klaviyo_sandbox")
def klaviyo_sandbox_fixture() -> Iterator[Sandbox]:
    """The `klaviyo_sandbox` fixture: a fresh sandbox per test, rate limits off, 0.05 s jobs.

    Import it under this name (`from tests.sandbox import klaviyo_sandbox_fixture  # noqa: F401`)
    and ask for `klaviyo_sandbox`: importing the fixture under its own name would trip ruff's
    F811 in every test that takes it.
    """
    with running_sandbox() as sandbox:
        yield sandbox


def wait_for_jobs(sandbox: Sandbox, timeout: float = 5.0) -> None:
    """Wait until no bulk job is queued or processing."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = sandbox.snapshot()["jobs"]
        if jobs["queued"] == 0 and jobs["processing"] == 0:
            return
        time.sleep(0.01)
    raise AssertionError(f"bulk jobs still running after {timeout} s")


def wait_for_job(job_url: str, timeout: float = 5.0) -> dict[str, Any]:
    """Poll a job's `links.self` until it is complete; answer its attributes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        attributes: dict[str, Any] = requests.get(job_url, headers=API_HEADERS, timeout=5).json()[
            "data"
        ]["attributes"]
        if attributes["status"] not in ("queued", "processing"):
            return attributes
        time.sleep(0.01)
    raise AssertionError(f"job {job_url} not complete after {timeout} s")
