"""The Klaviyo client against mocked HTTP: headers, timeouts, and typed errors."""

import json
import logging

import pytest
import requests
import responses

from klaviyo_sync.client import (
    KlaviyoClient,
    KlaviyoNotConfigured,
    KlaviyoPermanentError,
    KlaviyoRetryableError,
)

BASE = "https://klaviyo.test"
KEY = "pk_secret_do_not_log_123"


@pytest.fixture
def client() -> KlaviyoClient:
    return KlaviyoClient(base_url=BASE, api_key=KEY, revision="2026-07-15", timeout=(3.05, 20.0))


def _error_body(detail: str, code: str = "invalid") -> dict:
    return {
        "errors": [
            {
                "id": None,
                "status": 400,
                "code": code,
                "title": None,
                "detail": detail,
                "source": {"pointer": "/data/attributes/email"},
            }
        ]
    }


@responses.activate
def test_every_call_carries_the_key_revision_json_api_headers_and_a_timeout(client, monkeypatch):
    seen = {}
    real_request = requests.Session.request

    def spy(self, method, url, **kwargs):
        seen["timeout"] = kwargs.get("timeout")
        return real_request(self, method, url, **kwargs)

    monkeypatch.setattr(requests.Session, "request", spy)
    responses.post(f"{BASE}/api/back-in-stock-subscriptions", status=202)

    client.back_in_stock_subscription_create(body={"data": {"type": "back-in-stock-subscription"}})

    request = responses.calls[0].request
    assert request.headers["Authorization"] == f"Klaviyo-API-Key {KEY}"
    assert request.headers["revision"] == "2026-07-15"
    assert request.headers["Content-Type"] == "application/vnd.api+json"
    assert request.headers["Accept"] == "application/vnd.api+json"
    assert json.loads(request.body) == {"data": {"type": "back-in-stock-subscription"}}
    assert seen["timeout"] == (3.05, 20.0)


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504, 524])
@responses.activate
def test_throttling_and_server_errors_are_retryable(client, status):
    responses.post(
        f"{BASE}/api/profile-import",
        json=_error_body("slow down", "throttled"),
        status=status,
        headers={"Retry-After": "7"},
    )

    with pytest.raises(KlaviyoRetryableError) as raised:
        client.profile_import(body={})

    assert raised.value.status == status
    assert raised.value.retry_after == 7.0
    assert "slow down" in raised.value.detail


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
@responses.activate
def test_other_client_errors_are_permanent_with_klaviyos_detail(client, status):
    responses.post(f"{BASE}/api/profile-import", json=_error_body("bad email"), status=status)

    with pytest.raises(KlaviyoPermanentError) as raised:
        client.profile_import(body={})

    assert raised.value.retryable is False
    assert raised.value.detail == "bad email (/data/attributes/email)"


@responses.activate
def test_timeouts_and_dropped_connections_are_retryable(client):
    responses.post(f"{BASE}/api/profile-import", body=requests.exceptions.ReadTimeout("late"))
    responses.post(f"{BASE}/api/back-in-stock-subscriptions", body=requests.ConnectionError("rst"))

    with pytest.raises(KlaviyoRetryableError, match="timed out"):
        client.profile_import(body={})
    with pytest.raises(KlaviyoRetryableError, match="connection failed"):
        client.back_in_stock_subscription_create(body={})


@responses.activate
def test_a_create_that_already_exists_counts_as_success(client):
    responses.post(f"{BASE}/api/catalog-items", status=201, json={"data": {"id": "x"}})
    responses.post(
        f"{BASE}/api/catalog-items", status=409, json=_error_body("already exists", "duplicate")
    )

    assert client.catalog_create(kind="item", body={}) is True
    assert client.catalog_create(kind="item", body={}) is False


def test_without_a_key_nothing_is_sent(monkeypatch):
    client = KlaviyoClient(base_url=BASE, api_key="", revision="2026-07-15", timeout=(1, 1))
    monkeypatch.setattr(requests.Session, "request", lambda *a, **k: pytest.fail("sent"))

    with pytest.raises(KlaviyoNotConfigured):
        client.profile_import(body={})


@responses.activate
def test_the_key_appears_in_no_error_text_log_line_or_repr(client, caplog):
    caplog.set_level(logging.DEBUG)
    responses.post(f"{BASE}/api/profile-import", json=_error_body("nope"), status=401)
    responses.post(f"{BASE}/api/back-in-stock-subscriptions", body=requests.ConnectionError("x"))

    texts = [repr(client)]
    for call in (
        lambda: client.profile_import(body={}),
        lambda: client.back_in_stock_subscription_create(body={}),
    ):
        with pytest.raises(Exception) as raised:
            call()
        texts += [str(raised.value), repr(raised.value), str(raised.value.__cause__)]

    assert all(KEY not in text for text in texts)
    assert KEY not in caplog.text


def test_the_timeouts_come_from_the_settings(settings):
    settings.KLAVIYO_CONNECT_TIMEOUT_SECONDS = 1.5
    settings.KLAVIYO_READ_TIMEOUT_SECONDS = 7.0

    assert KlaviyoClient.from_settings().timeout == (1.5, 7.0)
