"""The `/_sandbox/` control endpoints: losing catalog objects as a person would in Klaviyo."""

from __future__ import annotations

import json
from typing import Any

import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from klaviyo_sandbox import Sandbox
from tests.klaviyo_sandbox.test_server import item, post, variant
from tests.sandbox import (
    API_HEADERS,
    klaviyo_sandbox_fixture,  # noqa: F401  (the `klaviyo_sandbox` fixture)
    running_sandbox,
)

CATEGORY = {"type": "catalog-category", "attributes": {"external_id": "bis", "name": "BIS"}}


def catalog_fill(sandbox: Sandbox) -> None:
    for path, resource in [
        ("/api/catalog-categories", CATEGORY),
        ("/api/catalog-items", item("12366")),
        ("/api/catalog-items", item("12500")),
        ("/api/catalog-items", item("12400_DE_00")),
        ("/api/catalog-variants", variant("12400_DE_00_23500", "12400_DE_00")),
        ("/api/catalog-variants", variant("12400_DE_00_23501", "12400_DE_00")),
    ]:
        assert post(sandbox, path, {"data": resource}).status_code == 201


def catalog_keys(sandbox: Sandbox) -> dict[str, set[str]]:
    state = sandbox.snapshot()
    return {kind: set(state[kind]) for kind in ("items", "variants", "categories")}


def test_objects_deleted_by_external_id_are_gone_and_an_item_takes_its_variants(
    klaviyo_sandbox: Sandbox,
) -> None:
    catalog_fill(klaviyo_sandbox)

    answer = requests.post(
        klaviyo_sandbox.url + "/_sandbox/catalog/delete",
        json={"items": ["12500", "12400_DE_00"], "variants": ["12400_DE_00_23501", "nope"]},
        timeout=5,
    )

    assert answer.status_code == 200
    assert answer.json() == {
        "deleted": {
            "items": ["12500", "12400_DE_00"],
            "variants": ["12400_DE_00_23500", "12400_DE_00_23501"],
            "categories": [],
        },
        "missing": {"items": [], "variants": ["nope"], "categories": []},
    }
    assert catalog_keys(klaviyo_sandbox) == {
        "items": {"12366"},
        "variants": set(),
        "categories": {"bis"},
    }


def test_a_lost_variant_is_missing_for_klaviyos_api_as_well(klaviyo_sandbox: Sandbox) -> None:
    catalog_fill(klaviyo_sandbox)

    klaviyo_sandbox.catalog_delete(variants=["12400_DE_00_23501"])
    read = requests.get(
        klaviyo_sandbox.url + "/api/catalog-variants/$custom:::$default:::12400_DE_00_23501",
        headers=API_HEADERS,
        timeout=5,
    )

    assert read.status_code == 404
    assert "12400_DE_00_23500" in catalog_keys(klaviyo_sandbox)["variants"]


def test_emptying_the_catalog_keeps_subscriptions_and_profiles(klaviyo_sandbox: Sandbox) -> None:
    catalog_fill(klaviyo_sandbox)
    post(
        klaviyo_sandbox,
        "/api/profile-import",
        {"data": {"type": "profile", "attributes": {"email": "ann@example.com"}}},
    )

    answer = requests.delete(klaviyo_sandbox.url + "/_sandbox/catalog", timeout=5)

    assert answer.json() == {"deleted": {"items": 3, "variants": 2, "categories": 1}}
    assert catalog_keys(klaviyo_sandbox) == {"items": set(), "variants": set(), "categories": set()}
    assert "ann@example.com" in klaviyo_sandbox.snapshot()["profiles"]


def test_the_same_is_a_method_for_tests(klaviyo_sandbox: Sandbox) -> None:
    catalog_fill(klaviyo_sandbox)

    lost = klaviyo_sandbox.catalog_delete(items=["12366"], categories=["bis"])
    cleared = klaviyo_sandbox.catalog_clear()

    assert lost["deleted"] == {"items": ["12366"], "variants": [], "categories": ["bis"]}
    assert cleared == {"items": 2, "variants": 2, "categories": 0}


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3)
    ),
    max_leaves=8,
)
BODIES = (
    st.dictionaries(
        st.sampled_from(["items", "variants", "categories", "all", ""]), JSON_VALUES, max_size=3
    ).map(json.dumps)
    | JSON_VALUES.map(json.dumps)
    | st.binary(max_size=30).map(lambda raw: raw.decode("latin-1"))
)


@given(body=BODIES)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_delete_body_gets_an_answer_in_the_control_shape_never_a_5xx(body: str) -> None:
    with running_sandbox() as sandbox:
        catalog_fill(sandbox)
        before = catalog_keys(sandbox)

        answer = requests.post(
            sandbox.url + "/_sandbox/catalog/delete",
            data=body.encode("utf-8"),
            headers={"Content-Type": "application/json"},
            timeout=5,
        )

        assert answer.status_code in (200, 400), answer.text
        document: dict[str, Any] = answer.json()
        if answer.status_code == 400:
            assert set(document) == {"error"}
            assert catalog_keys(sandbox) == before
        else:
            assert set(document) == {"deleted", "missing"}
