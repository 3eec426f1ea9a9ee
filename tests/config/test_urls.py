"""The site's paths: the front page, the API's pages, and JSON for every answer under /api/."""

import re
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

UNKNOWN_API_ANSWERS = [
    ("get", "/api/checkout-api/selection", 404),
    ("post", "/api/checkout-api/selection", 404),
    ("get", "/api/", 404),
    ("put", "/api/nothing/here", 404),
    ("post", "/api/checkout-api/back-in-stock-subscription/", 404),
    ("get", "/api/docs/", 404),
    ("get", "/api/checkout-api/back-in-stock-subscription", 405),
    ("delete", "/api/checkout-api/back-in-stock-subscription", 405),
    # Behind a key, credentials are checked before the method.
    ("put", "/api/shop-api/back-in-stock-subscriptions", 403),
    ("get", "/api/integration-api/stock", 403),
    ("post", "/api/schema", 405),
    ("post", "/api/docs", 405),
    ("delete", "/api/redoc", 405),
]


@pytest.mark.parametrize(("method", "path", "status"), UNKNOWN_API_ANSWERS)
def test_every_unknown_api_path_and_method_answers_json_in_the_error_shape(
    client, method, path, status
):
    response = getattr(client, method)(path)

    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    [(key, message)] = response.json()["errors"].items()
    assert key in {"path", "method", "authorization"}
    assert message


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "TRACE", "BREW"]),
    rest=st.text(alphabet=string.ascii_letters + string.digits + "-_./~%", max_size=40),
)
@pytest.mark.django_db
def test_any_method_on_any_path_under_api_answers_json_never_a_5xx(client, method, rest):
    response = client.generic(method, f"/api/{rest}")

    assert response.status_code < 500
    if response.status_code >= 400 and method != "HEAD":
        assert response["Content-Type"] == "application/json", rest
        assert set(response.json()) == {"errors"}


def test_an_unknown_api_path_answers_json_with_debug_on_too(client, settings):
    settings.DEBUG = True

    response = client.post("/api/checkout-api/selection")

    assert response.status_code == 404
    assert response.json() == {"errors": {"path": "No endpoint at /api/checkout-api/selection."}}


def test_a_method_no_one_knows_answers_json(client):
    response = client.generic("BREW", "/api/checkout-api/back-in-stock-subscription")

    assert response.status_code == 405
    assert response.json() == {"errors": {"method": 'Method "BREW" not allowed.'}}


def test_a_host_not_allowed_gets_json_under_api(client):
    response = client.get("/api/checkout-api/selection", HTTP_HOST="evil.example.net")

    assert response.status_code == 400
    assert response.json() == {"errors": {"request": "Bad request."}}


@pytest.mark.usefixtures("catalog", "back_in_stock_on")
def test_an_unexpected_error_under_api_is_json_without_its_detail(client, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("secret detail")

    monkeypatch.setattr("backinstock.services.subscription_create", broken)
    client.raise_request_exception = False

    response = client.post(
        "/api/checkout-api/back-in-stock-subscription",
        {"item": "12366-23400", "shipTo": {"country": "SE"}, "email": "ann@example.com"},
        content_type="application/json",
    )

    assert response.status_code == 500
    assert response.json() == {"errors": {"server": "Internal server error."}}


def test_paths_outside_the_api_keep_html_errors(client):
    response = client.get("/nothing-here")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_the_front_page_links_to_the_docs_the_admin_and_the_health_check(client):
    response = client.get("/")

    assert response.status_code == 200
    links = set(re.findall(r'href="([^"]+)"', response.content.decode()))
    assert {"/api/docs", "/api/redoc", "/api/schema", "/admin/", "/healthz"} <= links


def test_the_front_page_is_not_djangos_debug_page_with_debug_on(client, settings):
    settings.DEBUG = True

    response = client.get("/")

    assert response.status_code == 200
    assert b"Back in stock API" in response.content
