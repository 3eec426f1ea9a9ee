"""The Klaviyo sandbox behaves like Klaviyo where the project relies on it (over real HTTP)."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from klaviyo_sandbox import Sandbox, default_spec_path
from klaviyo_sandbox.server import LOOPBACK_NAMES, host_name
from tests.sandbox import (
    API_HEADERS,
    klaviyo_sandbox_fixture,  # noqa: F401  (the `klaviyo_sandbox` fixture)
    running_sandbox,
    wait_for_job,
)

PREFIX = "$custom:::$default:::"


def item(external_id: str, **attributes: Any) -> dict[str, Any]:
    return {
        "type": "catalog-item",
        "attributes": {
            "external_id": external_id,
            "title": f"Item {external_id}",
            "description": "",
            "url": f"https://shop.example/{external_id}",
            "price": 100.0,
            **attributes,
        },
    }


def variant(external_id: str, item_id: str, **attributes: Any) -> dict[str, Any]:
    return {
        "type": "catalog-variant",
        "attributes": {
            "external_id": external_id,
            "title": f"Variant {external_id}",
            "description": "",
            "sku": f"SKU-{external_id}",
            "inventory_quantity": 0,
            "price": 100.0,
            "url": f"https://shop.example/{item_id}",
            "inventory_policy": 1,
            **attributes,
        },
        "relationships": {"item": {"data": {"type": "catalog-item", "id": PREFIX + item_id}}},
    }


def job_body(kind: str, operation: str, resources: list[dict[str, Any]]) -> dict[str, Any]:
    plural = {"item": "items", "variant": "variants", "category": "categories"}[kind]
    return {
        "data": {
            "type": f"catalog-{kind}-bulk-{operation}-job",
            "attributes": {plural: {"data": resources}},
        }
    }


def post(sandbox: Sandbox, path: str, body: Any, **headers: str) -> requests.Response:
    return requests.post(
        sandbox.url + path, json=body, headers={**API_HEADERS, **headers}, timeout=5
    )


def run_job(
    sandbox: Sandbox, kind: str, operation: str, resources: list[dict[str, Any]]
) -> dict[str, Any]:
    response = post(
        sandbox, f"/api/catalog-{kind}-bulk-{operation}-jobs", job_body(kind, operation, resources)
    )
    assert response.status_code == 202, response.text
    return wait_for_job(response.json()["data"]["links"]["self"])


def subscription(email: str, variant_external_id: str) -> dict[str, Any]:
    return {
        "data": {
            "type": "back-in-stock-subscription",
            "attributes": {
                "channels": ["EMAIL"],
                "profile": {"data": {"type": "profile", "attributes": {"email": email}}},
            },
            "relationships": {
                "variant": {"data": {"type": "catalog-variant", "id": PREFIX + variant_external_id}}
            },
        }
    }


def profile(email: str, **attributes: Any) -> dict[str, Any]:
    return {"data": {"type": "profile", "attributes": {"email": email, **attributes}}}


# --- authentication and headers -------------------------------------------------------------------


def test_a_call_without_a_private_key_is_refused_with_401(klaviyo_sandbox: Sandbox) -> None:
    response = requests.get(
        klaviyo_sandbox.url + "/api/catalog-items",
        headers={**API_HEADERS, "Authorization": "Klaviyo-API-Key sk_wrong"},
        timeout=5,
    )

    assert response.status_code == 401
    error = response.json()["errors"][0]
    assert error["code"] == "not_authenticated"
    assert error["status"] == 401
    assert set(error) == {"id", "status", "code", "title", "detail", "source", "meta"}


def test_a_private_key_other_than_the_configured_one_is_refused_as_klaviyo_does(
    klaviyo_sandbox: Sandbox,
) -> None:
    wrong = {**API_HEADERS, "Authorization": "Klaviyo-API-Key pk_another_accounts_key"}

    response = requests.get(klaviyo_sandbox.url + "/api/catalog-items", headers=wrong, timeout=5)

    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == "not_authenticated"
    assert klaviyo_sandbox.snapshot()["failed_calls"][-1]["status"] == 401


def test_the_key_given_to_the_sandbox_is_the_one_it_accepts() -> None:
    with running_sandbox(api_key="pk_demo_sandbox") as sandbox:
        url = sandbox.url + "/api/catalog-items"
        demo = {**API_HEADERS, "Authorization": "Klaviyo-API-Key pk_demo_sandbox"}

        assert requests.get(url, headers=demo, timeout=5).status_code == 200
        assert requests.get(url, headers=API_HEADERS, timeout=5).status_code == 401


@pytest.mark.parametrize("path", ["/api/catalog-items", "/_sandbox/state", "/", "/catalog"])
def test_a_host_that_is_not_a_loopback_name_is_refused_whatever_the_path(
    klaviyo_sandbox: Sandbox, path: str
) -> None:
    rebound = {**API_HEADERS, "Host": f"attacker.example:{klaviyo_sandbox.port}"}

    response = requests.get(klaviyo_sandbox.url + path, headers=rebound, timeout=5)

    assert response.status_code == 403
    assert "ann@example.com" not in response.text
    assert klaviyo_sandbox.snapshot()["calls"] == {}


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "LOCALHOST:80", "[::1]", "[::1]:8100"])
def test_loopback_host_names_are_accepted_on_any_port(klaviyo_sandbox: Sandbox, host: str) -> None:
    headers = {**API_HEADERS, "Host": host}

    response = requests.get(klaviyo_sandbox.url + "/api/catalog-items", headers=headers, timeout=5)

    assert response.status_code == 200


@given(host=st.text(max_size=40))
@settings(max_examples=200, deadline=None)
def test_any_host_header_is_read_without_failing_and_only_loopback_names_pass(host: str) -> None:
    name = host_name(host)

    assert name is None or name == name.lower()
    if name in LOOPBACK_NAMES:
        assert name in host.lower()


def test_a_control_write_that_is_not_json_is_refused_and_changes_nothing(
    klaviyo_sandbox: Sandbox,
) -> None:
    post(klaviyo_sandbox, "/api/catalog-items", {"data": item("A")})
    url = klaviyo_sandbox.url

    answers = [
        requests.post(url + "/_sandbox/reset", data="{}", headers=plain, timeout=5)
        for plain in ({"Content-Type": "text/plain"}, {})
    ]
    fault = requests.post(
        url + "/_sandbox/faults",
        data='{"mode": "error"}',
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=5,
    )

    assert [a.status_code for a in [*answers, fault]] == [415, 415, 415]
    assert "error" in fault.json()
    assert set(klaviyo_sandbox.snapshot()["items"]) == {"A"}
    assert klaviyo_sandbox.faults.active() == []


def test_a_call_without_a_revision_header_is_refused_with_400(klaviyo_sandbox: Sandbox) -> None:
    headers = {k: v for k, v in API_HEADERS.items() if k != "revision"}

    response = requests.get(klaviyo_sandbox.url + "/api/catalog-items", headers=headers, timeout=5)

    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "invalid"


def test_a_body_that_is_not_json_is_refused_with_400(klaviyo_sandbox: Sandbox) -> None:
    response = requests.post(
        klaviyo_sandbox.url + "/api/catalog-items", data=b"{nope", headers=API_HEADERS, timeout=5
    )

    assert response.status_code == 400


# --- bulk jobs ------------------------------------------------------------------------------------


def test_a_bulk_item_create_job_goes_from_queued_through_processing_to_complete() -> None:
    with running_sandbox(job_seconds=0.4) as sandbox:
        response = post(
            sandbox,
            "/api/catalog-item-bulk-create-jobs",
            job_body("item", "create", [item("12366"), item("12367")]),
        )
        assert response.status_code == 202
        job = response.json()["data"]
        assert job["type"] == "catalog-item-bulk-create-job"
        assert job["attributes"]["status"] == "queued"
        assert job["attributes"]["total_count"] == 2
        assert sandbox.snapshot()["items"] == {}

        seen = []
        deadline = time.monotonic() + 5
        while (not seen or seen[-1] != "complete") and time.monotonic() < deadline:
            answer = requests.get(job["links"]["self"], headers=API_HEADERS, timeout=5).json()
            if not seen or seen[-1] != answer["data"]["attributes"]["status"]:
                seen.append(answer["data"]["attributes"]["status"])
            time.sleep(0.02)

        assert seen == ["queued", "processing", "complete"]
        assert answer["data"]["attributes"]["completed_count"] == 2
        assert answer["data"]["attributes"]["failed_count"] == 0
        assert set(sandbox.snapshot()["items"]) == {"12366", "12367"}


def test_failed_job_elements_are_counted_and_described_without_failing_the_job(
    klaviyo_sandbox: Sandbox,
) -> None:
    run_job(klaviyo_sandbox, "item", "create", [item("A")])

    items = run_job(klaviyo_sandbox, "item", "create", [item("B"), item("A")])
    variants = run_job(
        klaviyo_sandbox, "variant", "create", [variant("A_1", "A"), variant("X_1", "X")]
    )

    assert (items["status"], items["completed_count"], items["failed_count"]) == ("complete", 1, 1)
    assert items["errors"][0]["detail"] == "A catalog item with the external id `A` already exists."
    assert items["errors"][0]["source"]["pointer"] == "/data/attributes/items/data/1"
    assert (variants["completed_count"], variants["failed_count"]) == (1, 1)
    assert variants["errors"][0]["detail"] == "Catalog item `X` does not exist."
    assert variants["errors"][0]["source"]["pointer"] == "/data/attributes/variants/data/1"
    state = klaviyo_sandbox.snapshot()
    assert set(state["items"]) == {"A", "B"}
    assert state["variants"]["A_1"]["item"] == "A"


def test_bulk_updates_and_deletes_change_the_catalog(klaviyo_sandbox: Sandbox) -> None:
    run_job(klaviyo_sandbox, "item", "create", [item("A")])
    run_job(klaviyo_sandbox, "variant", "create", [variant("A_1", "A")])
    update = {
        "type": "catalog-variant",
        "id": PREFIX + "A_1",
        "attributes": {"inventory_quantity": 12},
    }

    updated = run_job(klaviyo_sandbox, "variant", "update", [update])
    assert klaviyo_sandbox.snapshot()["variants"]["A_1"]["inventory_quantity"] == 12
    deleted = run_job(
        klaviyo_sandbox, "item", "delete", [{"type": "catalog-item", "id": PREFIX + "A"}]
    )

    assert updated["completed_count"] == deleted["completed_count"] == 1
    state = klaviyo_sandbox.snapshot()
    assert state["items"] == {} and state["variants"] == {}


def test_a_variant_update_with_relationships_is_refused(klaviyo_sandbox: Sandbox) -> None:
    update = {"type": "catalog-variant", "id": PREFIX + "A_1", "attributes": {"price": 1.0}}
    update["relationships"] = variant("A_1", "B")["relationships"]

    response = post(
        klaviyo_sandbox,
        "/api/catalog-variant-bulk-update-jobs",
        job_body("variant", "update", [update]),
    )

    assert response.status_code == 400


def test_a_job_of_more_than_100_resources_is_refused(klaviyo_sandbox: Sandbox) -> None:
    resources = [item(str(n)) for n in range(101)]

    response = post(
        klaviyo_sandbox, "/api/catalog-item-bulk-create-jobs", job_body("item", "create", resources)
    )

    assert response.status_code == 400
    assert "100" in response.json()["errors"][0]["detail"]


@pytest.mark.parametrize("spec_path", [None, default_spec_path()], ids=["sdk", "sdk+spec"])
def test_a_body_that_breaks_klaviyos_schema_is_refused_with_400(spec_path: Any) -> None:
    resources = [variant("A_1", "A"), variant("A_2", "A", inventory_quantity="3")]

    with running_sandbox(spec_path=spec_path) as sandbox:
        response = post(
            sandbox,
            "/api/catalog-variant-bulk-create-jobs",
            job_body("variant", "create", resources),
        )

    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["code"] == "invalid"
    assert "CatalogVariantCreateJobCreateQuery: Input should be a valid number" in error["detail"]
    pointer = "/data/attributes/variants/data/1/attributes/inventory_quantity"
    assert error["source"]["pointer"] == pointer


def test_a_misspelt_attribute_is_refused_naming_it(klaviyo_sandbox: Sandbox) -> None:
    response = post(klaviyo_sandbox, "/api/catalog-items", {"data": item("A", pubished=False)})

    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["source"]["pointer"] == "/data/attributes/pubished"
    assert "`pubished` is not an attribute Klaviyo's request model knows" in error["detail"]
    assert klaviyo_sandbox.snapshot()["items"] == {}


# --- single objects and lists ---------------------------------------------------------------------


def test_the_ids_filter_pages_through_links_next(klaviyo_sandbox: Sandbox) -> None:
    run_job(klaviyo_sandbox, "item", "create", [item(str(n)) for n in range(5)])
    wanted = ",".join(f'"{PREFIX}{n}"' for n in ("0", "2", "4", "missing"))
    url: str | None = klaviyo_sandbox.url + "/api/catalog-items"
    params: dict[str, str] | None = {"filter": f"any(ids,[{wanted}])", "page[size]": "2"}

    found, pages = [], 0
    while url:
        answer = requests.get(url, params=params, headers=API_HEADERS, timeout=5).json()
        found += [resource["id"] for resource in answer["data"]]
        url, params, pages = answer["links"]["next"], None, pages + 1

    assert found == [PREFIX + "0", PREFIX + "2", PREFIX + "4"]
    assert pages == 2


def test_a_single_create_answers_201_and_a_duplicate_409(klaviyo_sandbox: Sandbox) -> None:
    created = post(klaviyo_sandbox, "/api/catalog-items", {"data": item("12366")})
    duplicate = post(klaviyo_sandbox, "/api/catalog-items", {"data": item("12366")})

    assert created.status_code == 201
    assert created.json()["data"]["id"] == PREFIX + "12366"
    assert created.json()["data"]["attributes"]["title"] == "Item 12366"
    assert duplicate.status_code == 409
    assert duplicate.json()["errors"][0]["code"] == "duplicate"


def test_a_single_object_can_be_read_patched_and_deleted(klaviyo_sandbox: Sandbox) -> None:
    post(klaviyo_sandbox, "/api/catalog-items", {"data": item("12366")})
    url = f"{klaviyo_sandbox.url}/api/catalog-items/{PREFIX}12366"
    patch = {"data": {"type": "catalog-item", "id": PREFIX + "12366", "attributes": {"price": 5}}}

    patched = requests.patch(url, json=patch, headers=API_HEADERS, timeout=5)
    deleted = requests.delete(url, headers=API_HEADERS, timeout=5)
    missing = requests.get(url, headers=API_HEADERS, timeout=5)

    assert patched.status_code == 200
    assert patched.json()["data"]["attributes"]["price"] == 5
    assert deleted.status_code == 204
    assert missing.status_code == 404


# --- back in stock, profiles ----------------------------------------------------------------------


def test_a_back_in_stock_subscription_is_accepted_with_an_empty_202_and_every_call_recorded(
    klaviyo_sandbox: Sandbox,
) -> None:
    post(klaviyo_sandbox, "/api/catalog-items", {"data": item("A")})
    post(klaviyo_sandbox, "/api/catalog-variants", {"data": variant("A_1", "A")})

    first = post(klaviyo_sandbox, "/api/back-in-stock-subscriptions", subscription("a@x.se", "A_1"))
    again = post(klaviyo_sandbox, "/api/back-in-stock-subscriptions", subscription("a@x.se", "A_1"))

    assert (first.status_code, first.content) == (202, b"")
    assert again.status_code == 202
    recorded = klaviyo_sandbox.snapshot()["back_in_stock_subscriptions"]
    assert [(s["email"], s["variant_id"], s["channels"]) for s in recorded] == [
        ("a@x.se", PREFIX + "A_1", ["EMAIL"])
    ] * 2


def test_a_back_in_stock_subscription_to_a_missing_variant_is_refused_with_400(
    klaviyo_sandbox: Sandbox,
) -> None:
    response = post(
        klaviyo_sandbox, "/api/back-in-stock-subscriptions", subscription("a@x.se", "nope")
    )

    assert response.status_code == 400
    assert "`nope` does not exist" in response.json()["errors"][0]["detail"]
    assert klaviyo_sandbox.snapshot()["back_in_stock_subscriptions"] == []


def test_profile_import_creates_then_updates_merging_properties(klaviyo_sandbox: Sandbox) -> None:
    created = post(
        klaviyo_sandbox, "/api/profile-import", profile("a@x.se", properties={"Language": "sv"})
    )
    updated = post(
        klaviyo_sandbox,
        "/api/profile-import",
        profile("a@x.se", locale="sv-SE", properties={"Currency": "SEK"}),
    )

    assert created.status_code == 201
    assert updated.status_code == 200
    assert updated.json()["data"]["id"] == created.json()["data"]["id"]
    stored = klaviyo_sandbox.snapshot()["profiles"]["a@x.se"]
    assert stored["properties"] == {"Language": "sv", "Currency": "SEK"}
    assert stored["locale"] == "sv-SE"


def test_a_data_privacy_deletion_removes_the_profile(klaviyo_sandbox: Sandbox) -> None:
    post(klaviyo_sandbox, "/api/profile-import", profile("a@x.se"))
    body = {
        "data": {
            "type": "data-privacy-deletion-job",
            "attributes": {"profile": {"data": profile("a@x.se")["data"]}},
        }
    }

    response = post(klaviyo_sandbox, "/api/data-privacy-deletion-jobs", body)

    assert (response.status_code, response.content) == (202, b"")
    state = klaviyo_sandbox.snapshot()
    assert state["profiles"] == {}
    assert state["deleted_profiles"][0]["email"] == "a@x.se"


# --- rate limits and faults -----------------------------------------------------------------------


def test_the_call_over_the_burst_limit_gets_429_with_retry_after() -> None:
    with running_sandbox(rate_limits={"catalog_read": (3, 100)}) as sandbox:
        if time.time() % 1 > 0.8:  # the four calls must fall in one clock second
            time.sleep(1 - time.time() % 1 + 0.01)
        answers = [
            requests.get(sandbox.url + "/api/catalog-items", headers=API_HEADERS, timeout=5)
            for _ in range(4)
        ]

        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        assert answers[0].headers["RateLimit-Limit"] == "100"
        assert answers[2].headers["RateLimit-Remaining"] == "97"
        assert int(answers[3].headers["Retry-After"]) >= 1
        assert answers[3].json()["errors"][0]["code"] == "throttled"
        assert sandbox.snapshot()["throttled"] == 1


def test_an_error_fault_answers_503_for_count_calls_then_normally(
    klaviyo_sandbox: Sandbox,
) -> None:
    requests.post(
        klaviyo_sandbox.url + "/_sandbox/faults", json={"mode": "error", "count": 2}, timeout=5
    )
    url = klaviyo_sandbox.url + "/api/catalog-items"

    statuses = [requests.get(url, headers=API_HEADERS, timeout=5).status_code for _ in range(3)]

    assert statuses == [503, 503, 200]
    assert klaviyo_sandbox.snapshot()["calls"]["GET /api/catalog-items"] == 3


def test_a_throttle_fault_answers_429_with_retry_after(klaviyo_sandbox: Sandbox) -> None:
    klaviyo_sandbox.add_fault("throttle", retry_after=7, path_prefix="/api/profile-import")

    throttled = post(klaviyo_sandbox, "/api/profile-import", profile("a@x.se"))
    elsewhere = requests.get(
        klaviyo_sandbox.url + "/api/catalog-items", headers=API_HEADERS, timeout=5
    )

    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "7"
    assert throttled.json()["errors"][0]["code"] == "throttled"
    assert elsewhere.status_code == 200


def test_a_slow_fault_delays_the_answer(klaviyo_sandbox: Sandbox) -> None:
    klaviyo_sandbox.add_fault("slow", delay=0.3, count=1)
    url = klaviyo_sandbox.url + "/api/catalog-items"

    started = time.monotonic()
    response = requests.get(url, headers=API_HEADERS, timeout=5)

    assert response.status_code == 200
    assert time.monotonic() - started >= 0.3


def test_a_drop_fault_gives_the_client_a_connection_error(klaviyo_sandbox: Sandbox) -> None:
    klaviyo_sandbox.add_fault("drop", count=1)
    url = klaviyo_sandbox.url + "/api/catalog-items"

    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(url, headers=API_HEADERS, timeout=5)
    assert requests.get(url, headers=API_HEADERS, timeout=5).status_code == 200


def test_reset_clears_catalog_subscriptions_counters_and_faults(klaviyo_sandbox: Sandbox) -> None:
    post(klaviyo_sandbox, "/api/catalog-items", {"data": item("A")})
    post(klaviyo_sandbox, "/api/profile-import", profile("a@x.se"))
    klaviyo_sandbox.add_fault("error")

    reset = requests.post(klaviyo_sandbox.url + "/_sandbox/reset", json={}, timeout=5)

    assert reset.status_code == 200
    state = requests.get(klaviyo_sandbox.url + "/_sandbox/state", timeout=5).json()
    assert (state["items"], state["profiles"], state["calls"]) == ({}, {}, {})
    assert requests.get(
        klaviyo_sandbox.url + "/api/catalog-items", headers=API_HEADERS, timeout=5
    ).ok


# --- pages ----------------------------------------------------------------------------------------


def test_the_pages_render_and_escape_what_they_show(klaviyo_sandbox: Sandbox) -> None:
    post(klaviyo_sandbox, "/api/catalog-items", {"data": item("A", title="<script>x</script>")})
    post(klaviyo_sandbox, "/api/catalog-variants", {"data": variant("A_1", "A")})
    post(klaviyo_sandbox, "/api/back-in-stock-subscriptions", subscription("a@x.se", "A_1"))

    paths = ("/", "/catalog", "/back-in-stock")
    pages = {path: requests.get(klaviyo_sandbox.url + path, timeout=5) for path in paths}

    assert all(page.status_code == 200 for page in pages.values())
    assert "&lt;script&gt;x&lt;/script&gt;" in pages["/catalog"].text
    assert "<script>" not in pages["/catalog"].text
    assert "a@x.se" in pages["/back-in-stock"].text
    assert "A_1" in pages["/back-in-stock"].text
