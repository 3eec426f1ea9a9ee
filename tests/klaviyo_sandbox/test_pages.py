"""The sandbox's pages show what a person checks first: faults, failed calls, and how fresh."""

from __future__ import annotations

import contextlib
import re

import requests

from klaviyo_sandbox import Sandbox
from tests.klaviyo_sandbox.test_server import item, post, subscription, variant
from tests.sandbox import (
    API_HEADERS,
    klaviyo_sandbox_fixture,  # noqa: F401  (the `klaviyo_sandbox` fixture)
)


def page(sandbox: Sandbox, path: str) -> str:
    answer = requests.get(sandbox.url + path, timeout=5)
    assert answer.status_code == 200
    return answer.text


def test_the_index_shows_the_injected_faults(klaviyo_sandbox: Sandbox) -> None:
    klaviyo_sandbox.add_fault("error", status=502, count=3, path_prefix="/api/profile-import")
    klaviyo_sandbox.add_fault("slow", delay=2.5, seconds=60)

    html = page(klaviyo_sandbox, "/")

    assert "Injected faults (2)" in html
    assert "/api/profile-import" in html
    assert "502" in html
    assert "2.5" in html


def test_the_index_shows_recent_failed_calls_with_status_route_and_detail(
    klaviyo_sandbox: Sandbox,
) -> None:
    post(klaviyo_sandbox, "/api/catalog-items", {"data": item("A")})
    post(klaviyo_sandbox, "/api/catalog-items", {"data": item("A")})  # a duplicate: 409
    post(klaviyo_sandbox, "/api/back-in-stock-subscriptions", subscription("a@x.se", "A_404"))
    klaviyo_sandbox.add_fault("drop", count=1)
    with contextlib.suppress(requests.ConnectionError):
        requests.get(klaviyo_sandbox.url + "/api/catalog-items", headers=API_HEADERS, timeout=5)

    html = page(klaviyo_sandbox, "/")
    failed = klaviyo_sandbox.snapshot()["failed_calls"]

    assert [call["status"] for call in failed] == [409, 400, None]
    assert "Recent failed calls (latest 3, newest first)" in html
    assert "POST /api/catalog-items" in html
    assert "A catalog item with the external id `A` already exists." in html
    assert "Catalog variant `A_404` does not exist." in html
    assert "dropped" in html


def test_every_page_says_when_it_was_last_refreshed(klaviyo_sandbox: Sandbox) -> None:
    post(klaviyo_sandbox, "/api/catalog-items", {"data": item("A")})
    post(klaviyo_sandbox, "/api/catalog-variants", {"data": variant("A_1", "A")})

    for path in ("/", "/catalog", "/back-in-stock"):
        html = page(klaviyo_sandbox, path)

        assert re.search(r"Last refreshed \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", html), path


def test_without_faults_or_failures_the_index_says_so(klaviyo_sandbox: Sandbox) -> None:
    html = page(klaviyo_sandbox, "/")

    assert "None: every call is answered normally." in html
    assert "<h2>Recent failed calls</h2><p>None.</p>" in html
