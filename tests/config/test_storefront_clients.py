"""What Centra's storefront clients rely on, set up in config/settings/base.py: CORS for their
headers, and a correlation id on every answer, in the request's log lines and in its tasks."""

import io
import logging

import pytest

ORIGIN = "https://shop.example.com"
CHECKOUT_URL = "/api/checkout-api/back-in-stock-subscription"
SE = {"item": "12366-23400", "shipTo": {"country": "SE"}, "email": "ann@example.com"}


@pytest.fixture
def allowed_origin(settings):
    settings.CORS_ALLOWED_ORIGINS = [ORIGIN]


def preflight(client, url, *, origin=ORIGIN, headers="api-token,content-type"):
    return client.options(
        url,
        HTTP_ORIGIN=origin,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS=headers,
    )


@pytest.mark.usefixtures("allowed_origin")
@pytest.mark.parametrize("url", [CHECKOUT_URL, "/api/storefront-api/graphql"])
@pytest.mark.parametrize(
    "headers", ["api-token,content-type", "x-correlation-id", "API-Token, X-Correlation-ID"]
)
def test_a_preflight_for_centras_client_headers_from_an_allowed_origin_is_allowed(
    client, url, headers
):
    response = preflight(client, url, headers=headers)

    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == ORIGIN
    allowed = {h.strip() for h in response["Access-Control-Allow-Headers"].split(",")}
    assert {"api-token", "x-correlation-id", "content-type"} <= allowed
    assert "POST" in response["Access-Control-Allow-Methods"]


@pytest.mark.usefixtures("allowed_origin")
def test_a_preflight_from_another_origin_is_not_allowed(client):
    response = preflight(client, CHECKOUT_URL, origin="https://evil.example.net")

    assert "Access-Control-Allow-Origin" not in response


@pytest.mark.usefixtures("allowed_origin")
def test_the_server_side_apis_get_no_cors_headers(client):
    response = preflight(client, "/api/shop-api/back-in-stock-subscription")

    assert "Access-Control-Allow-Origin" not in response


@pytest.mark.usefixtures("allowed_origin", "catalog", "back_in_stock_on")
def test_an_allowed_origin_can_read_the_correlation_id_and_retry_after(client):
    response = client.post(CHECKOUT_URL, SE, content_type="application/json", HTTP_ORIGIN=ORIGIN)

    assert response.status_code == 201
    exposed = {h.strip().lower() for h in response["Access-Control-Expose-Headers"].split(",")}
    assert {"x-correlation-id", "retry-after"} <= exposed


def test_a_correlation_id_sent_by_the_client_is_echoed_as_given(client):
    response = client.get("/api/checkout-api/selection", HTTP_X_CORRELATION_ID="centra-7f3a-001")

    assert response["X-Correlation-ID"] == "centra-7f3a-001"


@pytest.mark.usefixtures("allowed_origin")
@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", "/"),
        ("get", "/api/checkout-api/selection"),
        ("delete", CHECKOUT_URL),
        ("post", CHECKOUT_URL),
        ("options", CHECKOUT_URL),
        ("get", "/api/schema"),
    ],
)
def test_every_answer_gets_a_correlation_id_when_the_client_sent_none(client, method, url):
    response = getattr(client, method)(url, HTTP_ORIGIN=ORIGIN)

    assert len(response["X-Correlation-ID"]) == 32
    int(response["X-Correlation-ID"], 16)  # a fresh UUID's hex


def test_two_requests_without_an_id_get_different_ones(client):
    first = client.get("/api/checkout-api/selection")["X-Correlation-ID"]
    second = client.get("/api/checkout-api/selection")["X-Correlation-ID"]

    assert first != second


@pytest.fixture
def console_output():
    """What the console handler of settings.LOGGING writes, while the test runs."""
    [console] = [h for h in logging.getLogger().handlers if h.get_name() == "console"]
    stream = io.StringIO()
    previous = console.setStream(stream)
    try:
        yield stream
    finally:
        console.setStream(previous)


def test_the_request_log_lines_carry_its_correlation_id(client, console_output):
    client.get("/api/checkout-api/selection", HTTP_X_CORRELATION_ID="centra-7f3a-002")

    [line] = [line for line in console_output.getvalue().splitlines() if "Not Found" in line]
    assert "[centra-7f3a-002]" in line
    assert "/api/checkout-api/selection" in line
