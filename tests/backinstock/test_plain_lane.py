"""The Checkout API's plain lane: the usual subscribe request is answered without DRF's request,
negotiation, parser and renderer, and every answer stays DRF's, byte for byte (CONTRACT §3)."""

import json
import re
from unittest import mock

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from rest_framework.views import APIView

from backinstock.apis import CheckoutSubscribeApi
from backinstock.models import Subscription

CHECKOUT_URL = "/api/checkout-api/back-in-stock-subscription"
USUAL = {"item": "12366-23400", "shipTo": {"country": "SE"}, "email": "ann@example.com"}
# Set anew on every answer.
VOLATILE_HEADERS = {"X-Correlation-ID"}

pytestmark = pytest.mark.usefixtures("catalog", "back_in_stock_on")


def _send(client, *, body: bytes, content_type: str, accept: str | None, query: str = ""):
    extra = {"HTTP_ACCEPT": accept} if accept is not None else {}
    url = f"{CHECKOUT_URL}?{query}" if query else CHECKOUT_URL
    return client.generic("POST", url, data=body, content_type=content_type, **extra)


def _answer(response) -> tuple[int, dict[str, str], bytes]:
    headers = {
        name: value for name, value in response.headers.items() if name not in VOLATILE_HEADERS
    }
    return response.status_code, headers, response.content


_STORED = ("variant__external_id", "email", "language_id", "status")


def _answers_of_both_lanes(client, **request):
    """(plain lane's, DRF's) answer and subscriptions stored, to the same request sent once
    through each; what the first stored is removed before the second, so both start alike."""
    answers = {}
    for plain_lane in (True, False):
        before = set(Subscription.objects.values_list("id", flat=True))
        with mock.patch.object(CheckoutSubscribeApi, "plain_lane", plain_lane):
            answer = _answer(_send(client, **request))
        stored = Subscription.objects.exclude(id__in=before)
        answers[plain_lane] = (*answer, sorted(stored.values_list(*_STORED)))
        stored.delete()
    return answers[True], answers[False]


def _drf_dispatches(client, **request) -> int:
    with mock.patch.object(APIView, "dispatch", autospec=True, side_effect=APIView.dispatch) as drf:
        _send(client, **request)
    return drf.call_count


def test_the_usual_request_skips_drf_and_anything_else_goes_through_it(client):
    usual = json.dumps(USUAL).encode()
    assert _drf_dispatches(client, body=usual, content_type="application/json", accept=None) == 0
    assert _drf_dispatches(client, body=usual, content_type="application/json", accept="*/*") == 0
    assert Subscription.objects.count() == 1

    unusual = [
        {"body": usual, "content_type": "application/json; charset=utf-8", "accept": None},
        {"body": usual, "content_type": "application/json", "accept": "application/json; indent=4"},
        {"body": usual, "content_type": "application/json", "accept": "text/html"},
        {"body": usual, "content_type": "application/json", "accept": None, "query": "format=json"},
        {"body": b'{"item": ', "content_type": "application/json", "accept": None},
        {
            "body": json.dumps({**USUAL, "email": 42}).encode(),
            "content_type": "application/json",
            "accept": None,
        },
    ]
    for request in unusual:
        assert _drf_dispatches(client, **request) == 1, request


_BODIES = st.one_of(
    st.builds(
        lambda email, country, item: json.dumps(
            {"item": item, "shipTo": {"country": country}, "email": email}
        ).encode(),
        email=st.one_of(st.emails(), st.text(max_size=30), st.just("Ann@Example.com")),
        country=st.sampled_from(["SE", "se", "DE", "US", "XX", ""]),
        item=st.sampled_from(["12366-23400", "12366-99", "x", ""]),
    ),
    st.sampled_from(
        [
            b'{"item": ',
            b"[1, 2]",
            b"",
            b'{"item": "12366-23400", "shipTo": {"country": "SE"}, "email": "\\ud800@x.se"}',
            json.dumps({**USUAL, "padding": "x" * 9000}).encode(),
            json.dumps({**USUAL, "language": 3}).encode(),
            json.dumps({**USUAL, "shipTo": {"country": "US", "state": "NY"}}).encode(),
            '{"item": "12366-23400", "shipTo": {"country": "SE"}, "email": "ö@x.se"}'.encode(
                "latin-1"
            ),
        ]
    ),
    st.binary(max_size=40),
)


@hypothesis_settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=_BODIES,
    content_type=st.sampled_from(
        ["application/json", "application/json; charset=utf-8", "text/plain", ""]
    ),
    accept=st.sampled_from(
        [None, "*/*", "application/json", "application/json; indent=4", "text/html", "text/*"]
    ),
    query=st.sampled_from(["", "format=json", "x=1"]),
)
def test_both_lanes_give_the_same_answer_to_any_request(
    client, settings, body, content_type, accept, query
):
    """Each request goes through both lanes: the same status, headers and body, the same
    subscription stored (or none), and never a 5xx."""
    settings.SUBSCRIBE_RATE_PER_CLIENT = "1000000/min"
    settings.SUBSCRIBE_RATE_PER_EMAIL = "1000000/hour"

    plain, drf = _answers_of_both_lanes(
        client,
        body=body,
        content_type=content_type,
        accept=accept,
        query=query,
    )

    assert plain == drf
    assert plain[0] < 500


def _throttle_masked(answer: tuple) -> tuple:
    """The wait in a 429 moves by a second between two requests: masked."""
    status, headers, content, stored = answer
    return (
        status,
        {**headers, "Retry-After": "N"} if "Retry-After" in headers else headers,
        re.sub(rb"\d+", b"N", content),
        stored,
    )


def test_errors_raised_past_the_parse_are_drfs_answers(client, settings, back_in_stock_on):
    usual = {"body": json.dumps(USUAL).encode(), "content_type": "application/json", "accept": None}
    unknown = {**usual, "body": json.dumps({**USUAL, "item": "12366-99"}).encode()}
    plain, drf = _answers_of_both_lanes(client, **unknown)
    assert plain == drf
    assert plain[0] == 400

    settings.SUBSCRIBE_RATE_PER_EMAIL = "1/hour"
    elsewhere = {"country": "US", "state": "NY"}
    other_location = {**usual, "body": json.dumps({**USUAL, "shipTo": elsewhere}).encode()}
    assert _send(client, **usual).status_code == 201
    plain, drf = _answers_of_both_lanes(client, **other_location)
    assert _throttle_masked(plain) == _throttle_masked(drf)
    assert plain[0] == 429

    settings.SUBSCRIBE_RATE_PER_CLIENT = "1/min"
    plain, drf = _answers_of_both_lanes(client, **usual)
    assert _throttle_masked(plain) == _throttle_masked(drf)
    assert plain[0] == 429

    back_in_stock_on.back_in_stock_enabled = False
    back_in_stock_on.save()
    settings.SUBSCRIBE_RATE_PER_CLIENT = "1000000/min"
    fresh = {**usual, "body": json.dumps({**USUAL, "email": "bo@example.com"}).encode()}
    plain, drf = _answers_of_both_lanes(client, **fresh)
    assert plain == drf
    assert plain[0] == 403
    assert not Subscription.objects.filter(email="bo@example.com").exists()
