"""The JSON parser every endpoint shares: bad bodies are a 400 on ``body``, never a 5xx."""

import pytest
from django.test import Client

from backinstock.models import Subscription

URL = "/api/checkout-api/back-in-stock-subscription"
BODY = b'{"item": "12366-23400", "shipTo": {"country": "SE"}, "email": "ann@example.com"}'

pytestmark = pytest.mark.usefixtures("catalog", "back_in_stock_on")


@pytest.mark.parametrize("charset", ["rot13", "base64", "zlib", "hex", "latin-1", "utf-16"])
def test_a_charset_other_than_utf8_is_a_400_on_body(client, charset):
    response = client.generic(
        "POST", URL, BODY, content_type=f"application/json; charset={charset}"
    )

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["body"]
    assert not Subscription.objects.exists()


@pytest.mark.parametrize("charset", ["utf-8", "UTF-8", "utf8"])
def test_utf8_by_any_of_its_names_is_accepted(client, charset):
    response = client.generic(
        "POST", URL, BODY, content_type=f"application/json; charset={charset}"
    )
    assert response.status_code == 201


@pytest.mark.parametrize("length", ["١٢", "1_0", " 12", "+12"])
def test_a_content_length_that_is_not_ascii_digits_is_a_400_on_body(client, length):
    response = client.generic(
        "POST", URL, BODY, content_type="application/json", CONTENT_LENGTH=length
    )

    assert response.status_code == 400
    assert response.json() == {"errors": {"body": "Invalid Content-Length header."}}


class WithoutContentLength(Client):
    """The test client as gunicorn passes a chunked request on: no ``CONTENT_LENGTH`` in the
    environ, a ``Transfer-Encoding`` header, and ``wsgi.input_terminated`` set."""

    def request(self, **request):
        request.pop("CONTENT_LENGTH", None)
        request.setdefault("wsgi.input_terminated", True)
        return super().request(**request)


CHUNKED_ERROR = {
    "errors": {
        "body": "Send the body with a Content-Length header: "
        "bodies of unknown length (Transfer-Encoding) are not accepted."
    }
}


@pytest.mark.parametrize(
    "url",
    [
        URL,
        "/api/shop-api/back-in-stock-subscription",
        "/api/storefront-api/graphql",
        "/api/integration-api/stock",
        "/api/no-such-endpoint",
    ],
)
@pytest.mark.parametrize("coding", ["chunked", "gzip, chunked", "Chunked"])
def test_a_body_of_unknown_length_is_a_411_saying_a_content_length_is_needed(url, coding):
    response = WithoutContentLength().generic(
        "POST", url, BODY, content_type="application/json", HTTP_TRANSFER_ENCODING=coding
    )

    assert response.status_code == 411
    assert response.json() == CHUNKED_ERROR
    assert response["X-Correlation-ID"]
    assert not Subscription.objects.exists()


def test_a_body_of_unknown_length_outside_the_api_is_a_plain_411():
    response = WithoutContentLength().generic(
        "POST", "/admin/login/", b"username=a&password=b", HTTP_TRANSFER_ENCODING="chunked"
    )

    assert response.status_code == 411
    assert b"Content-Length" in response.content


def test_a_request_without_a_body_needs_no_content_length():
    response = WithoutContentLength().get("/api/storefront-api/schema.graphql")

    assert response.status_code == 200
