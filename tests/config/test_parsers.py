"""The JSON parser every endpoint shares: bad bodies are a 400 on ``body``, never a 5xx."""

import pytest

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
