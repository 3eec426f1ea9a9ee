"""Bodies checked with the request models of Klaviyo's official SDK: any input, a clear 400."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from klaviyo_sandbox.errors import ApiError
from klaviyo_sandbox.sdk import OTHER_MODELS, body_check, request_model_name
from tests.klaviyo_sandbox.test_server import item, job_body, variant
from tests.sandbox import API_HEADERS, running_sandbox

CALLS = [
    ("POST", "/api/catalog-item-bulk-create-jobs"),
    ("POST", "/api/catalog-variant-bulk-update-jobs"),
    ("POST", "/api/catalog-category-bulk-delete-jobs"),
    ("POST", "/api/catalog-items"),
    ("POST", "/api/catalog-variants"),
    ("PATCH", "/api/catalog-variants/$custom:::$default:::A_1"),
    ("POST", "/api/catalog-categories"),
    *OTHER_MODELS,
]
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(["data", "type", "id", "attributes", "relationships", "items", "x"]),
            children,
            max_size=4,
        )
    ),
    max_leaves=12,
)


def test_every_call_that_takes_a_body_has_a_request_model() -> None:
    assert all(request_model_name(method, path) for method, path in CALLS)
    assert request_model_name("GET", "/api/catalog-items") is None


@pytest.mark.parametrize(("method", "path"), CALLS)
@given(body=JSON)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_body_passes_or_is_refused_with_a_400_naming_where(
    method: str, path: str, body: Any
) -> None:
    try:
        body_check(method, path, body)
    except ApiError as refusal:
        assert refusal.status == 400
        assert refusal.code == "invalid"
        assert refusal.pointer is not None and refusal.pointer.startswith("/")


def test_a_value_the_model_would_change_is_refused() -> None:
    body = {"data": item("A", published="yes")}

    with pytest.raises(ApiError) as refusal:
        body_check("POST", "/api/catalog-items", body)

    assert refusal.value.pointer == "/data/attributes/published"


@given(
    body=st.one_of(
        JSON,
        st.builds(lambda a: {"data": {**item("B"), "attributes": a}}, JSON),
        st.builds(lambda r: job_body("variant", "create", [variant("A_2", "A"), r]), JSON),
    ),
    path=st.sampled_from(["/api/catalog-items", "/api/catalog-variant-bulk-create-jobs"]),
)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_no_body_gets_a_5xx_and_a_refused_one_changes_nothing(body: Any, path: str) -> None:
    with running_sandbox() as sandbox:
        assert requests.post(
            sandbox.url + "/api/catalog-items", json={"data": item("A")}, headers=API_HEADERS,
            timeout=5,
        ).ok  # fmt: skip
        before = sandbox.snapshot()["items"]

        answer = requests.post(sandbox.url + path, json=body, headers=API_HEADERS, timeout=5)

        assert answer.status_code < 500, answer.text
        if answer.status_code == 400:
            [error] = answer.json()["errors"]
            assert set(error) == {"id", "status", "code", "title", "detail", "source", "meta"}
            assert sandbox.snapshot()["items"] == before
