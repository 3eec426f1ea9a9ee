"""Centra's Storefront API (GraphQL): ``subscribeToBackInStock``, held to CONTRACT §3b."""

import logging

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from backinstock.models import Subscription
from tests.backinstock.conftest import assert_waits_to_the_end_of_its_window

URL = "/api/storefront-api/graphql"
CHECKOUT_URL = "/api/checkout-api/back-in-stock-subscription"
MUTATION = """
mutation Subscribe($input: BackInStockSubscribeInput!) {
  subscribeToBackInStock(input: $input) { subscribed userErrors { message path } }
}
"""
NEW_YORK = {
    "item": "12366-23400",
    "shipTo": {"countryCode": "US", "stateCode": "NY"},
    "email": "ann@example.com",
    "languageCode": "en",
}
SWEDEN = {"item": "12366-23400", "shipTo": {"countryCode": "SE"}, "email": "ann@example.com"}
PATH = ["subscribeToBackInStock", "input"]

pytestmark = pytest.mark.usefixtures("catalog", "back_in_stock_on")


def subscribe(client, subscription, **extra):
    body = {"query": MUTATION, "variables": {"input": subscription}}
    return client.post(URL, body, content_type="application/json", **extra)


def payload(response):
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert "errors" not in body, body
    return body["data"]["subscribeToBackInStock"]


def test_a_subscription_is_stored_as_the_checkout_api_stores_it(client):
    response = subscribe(client, {**NEW_YORK, "email": "  Ann.Lee@Example.COM "})

    assert response.status_code == 200
    assert payload(response) == {"subscribed": True, "userErrors": []}
    subscription = Subscription.objects.get()
    assert subscription.email == "ann.lee@example.com"
    assert subscription.status == "pending"
    assert subscription.language.code == "en"
    assert subscription.variant.external_id == "12366_US_NY_23400"


def test_a_repeat_gets_the_same_answer_and_stores_nothing_more(client):
    first = payload(subscribe(client, SWEDEN))
    again = payload(subscribe(client, {**SWEDEN, "email": "ANN@example.com"}))

    assert first == again == {"subscribed": True, "userErrors": []}
    assert Subscription.objects.count() == 1
    assert Subscription.objects.get().language.code == "sv"  # the country's language


def test_the_graphql_and_checkout_apis_share_one_subscription(client):
    payload(subscribe(client, SWEDEN))
    response = client.post(
        CHECKOUT_URL,
        {"item": "12366-23400", "shipTo": {"country": "SE"}, "email": "ann@example.com"},
        content_type="application/json",
    )

    assert response.status_code == 201
    assert Subscription.objects.count() == 1


@pytest.mark.parametrize(
    ("change", "message", "path"),
    [
        ({"item": "1-1"}, "item 1-1 not found", [*PATH, "item"]),
        ({"item": "12999-23500"}, "item 12999-23500 not found", [*PATH, "item"]),
        (
            {"shipTo": {"countryCode": "ZZ"}},
            "country ZZ is not a ship-to country",
            [*PATH, "shipTo", "countryCode"],
        ),
        (
            {"shipTo": {"countryCode": "NO"}},
            "country NO is not a ship-to country",
            [*PATH, "shipTo", "countryCode"],
        ),
        (
            {"shipTo": {"countryCode": ""}},
            "shipTo.country is required",
            [*PATH, "shipTo", "countryCode"],
        ),
        (
            {"shipTo": {"countryCode": "US"}},
            "state is required for country US",
            [*PATH, "shipTo", "stateCode"],
        ),
        (
            {"shipTo": {"countryCode": "US", "stateCode": "TX"}},
            "state TX not found in country US",
            [*PATH, "shipTo", "stateCode"],
        ),
        (
            {"shipTo": {"countryCode": "SE", "stateCode": "NY"}},
            "country SE has no states",
            [*PATH, "shipTo", "stateCode"],
        ),
        (
            {"email": "not-an-address"},
            "email is not a valid address: An email address must have an @-sign.",
            [*PATH, "email"],
        ),
        ({"email": None}, "This field is required.", [*PATH, "email"]),
        ({"languageCode": "xx"}, "language not found", [*PATH, "languageCode"]),
    ],
)
def test_each_bad_field_is_a_user_error_with_the_checkout_apis_message_at_centras_path(
    client, change, message, path
):
    response = subscribe(client, {**SWEDEN, **change})

    assert response.status_code == 200
    assert payload(response) == {
        "subscribed": False,
        "userErrors": [{"message": message, "path": path}],
    }
    assert not Subscription.objects.exists()


def test_every_bad_field_is_reported_at_once(client):
    response = subscribe(
        client,
        {"item": "1-1", "shipTo": {"countryCode": "US"}, "email": "x", "languageCode": "xx"},
    )

    paths = {tuple(error["path"][2:]) for error in payload(response)["userErrors"]}
    assert paths == {("item",), ("shipTo", "stateCode"), ("email",), ("languageCode",)}


def test_back_in_stock_switched_off_is_a_user_error_and_stores_nothing(client, back_in_stock_on):
    back_in_stock_on.back_in_stock_enabled = False
    back_in_stock_on.save()

    response = subscribe(client, SWEDEN)

    assert response.status_code == 200
    assert payload(response) == {
        "subscribed": False,
        "userErrors": [
            {
                "message": "Back-in-stock subscriptions are not enabled for this store.",
                "path": ["subscribeToBackInStock"],
            }
        ],
    }
    assert not Subscription.objects.exists()


def test_one_client_is_throttled_with_429_and_retry_after(client, settings):
    settings.SUBSCRIBE_RATE_PER_CLIENT = "2/min"
    for number in range(2):
        email = f"ann{number}@example.com"
        assert payload(subscribe(client, {**SWEDEN, "email": email}))["subscribed"]

    response = subscribe(client, {**SWEDEN, "email": "bob@example.com"})

    assert response.status_code == 429
    assert_waits_to_the_end_of_its_window(response["Retry-After"], period=60)
    [error] = payload(response)["userErrors"]
    assert error["message"].startswith("Request was throttled.")
    assert error["path"] == ["subscribeToBackInStock"]
    assert Subscription.objects.count() == 2


def test_one_address_is_throttled_across_the_graphql_and_checkout_apis(client, settings):
    settings.SUBSCRIBE_RATE_PER_EMAIL = "2/hour"
    client.post(
        CHECKOUT_URL,
        {"item": "12366-23400", "shipTo": {"country": "SE"}, "email": "ann@example.com"},
        content_type="application/json",
        REMOTE_ADDR="10.0.0.1",
    )
    assert payload(subscribe(client, NEW_YORK, REMOTE_ADDR="10.0.0.2"))["subscribed"]

    california = {**NEW_YORK, "shipTo": {"countryCode": "US", "stateCode": "CA"}}
    response = subscribe(client, {**california, "email": "ANN@example.com"}, REMOTE_ADDR="10.0.0.3")

    assert response.status_code == 429
    assert_waits_to_the_end_of_its_window(response["Retry-After"], period=3600)


def test_a_cors_preflight_from_an_allowed_origin_is_allowed(client, settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://shop.example.com"]

    response = client.options(
        URL,
        HTTP_ORIGIN="https://shop.example.com",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="api-token,content-type,x-correlation-id",
    )

    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "https://shop.example.com"
    assert "api-token" in response["Access-Control-Allow-Headers"]


def test_introspection_is_on_with_centras_type_names(client):
    query = """{ __schema { mutationType { fields { name } } }
                 input: __type(name: "BackInStockSubscribeInput") { inputFields { name } }
                 shipTo: __type(name: "CountryStateInput") { inputFields { name } }
                 payload: __type(name: "StockSubscribePayload") { fields { name } }
                 error: __type(name: "UserError") { fields { name } } }"""
    data = client.post(URL, {"query": query}, content_type="application/json").json()["data"]

    def names(entry, key):
        return {field["name"] for field in data[entry][key]}

    assert {f["name"] for f in data["__schema"]["mutationType"]["fields"]} == {
        "subscribeToBackInStock"
    }
    assert names("input", "inputFields") == {"item", "shipTo", "email", "languageCode"}
    assert names("shipTo", "inputFields") == {"countryCode", "stateCode"}
    assert names("payload", "fields") == {"subscribed", "userErrors"}
    assert names("error", "fields") == {"message", "path"}


def test_the_sdl_is_downloadable_as_text_and_linked_from_the_docs(client):
    response = client.get("/api/storefront-api/schema.graphql")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    sdl = response.content.decode()
    assert (
        "subscribeToBackInStock(input: BackInStockSubscribeInput!): StockSubscribePayload!" in sdl
    )
    assert "userErrors: [UserError!]!" in sdl
    assert "email: String\n" in sdl
    assert "/api/storefront-api/schema.graphql" in client.get("/").content.decode()
    schema = client.get("/api/schema?format=json").json()
    assert "/api/storefront-api/schema.graphql" in schema["info"]["description"]


@pytest.mark.parametrize(
    ("method", "body", "content_type", "status", "key"),
    [
        ("get", None, None, 405, "method"),
        ("put", "{}", "application/json", 405, "method"),
        ("post", "query=x", "application/x-www-form-urlencoded", 415, "body"),
        ("post", "{not json", "application/json", 400, "body"),
        ("post", "{}", "application/json", 400, "body"),
        ("post", '{"query": "' + "x" * 9000 + '"}', "application/json", 413, "body"),
    ],
)
def test_what_is_not_graphql_is_answered_in_the_error_shape(
    client, method, body, content_type, status, key
):
    kwargs = {"content_type": content_type} if content_type else {}
    response = getattr(client, method)(URL, *([body] if body is not None else []), **kwargs)

    assert response.status_code == status
    assert list(response.json()["errors"]) == [key]


def test_a_failure_inside_the_service_does_not_reach_the_client(client, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("secret detail")

    monkeypatch.setattr("backinstock.services.subscription_create", broken)

    body = subscribe(client, SWEDEN).json()

    assert body["errors"][0]["message"] == "Internal server error."
    assert "secret detail" not in str(body)


@hypothesis_settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    item=st.text(max_size=120),
    country=st.text(max_size=12),
    state=st.none() | st.text(max_size=12),
    email=st.none() | st.text(max_size=260),
    language=st.none() | st.text(max_size=12),
)
def test_any_input_gets_an_answer_never_a_5xx_and_a_refusal_stores_nothing(
    client, item, country, state, email, language
):
    before = Subscription.objects.count()
    subscription = {
        "item": item,
        "shipTo": {"countryCode": country, "stateCode": state},
        "email": email,
        "languageCode": language,
    }

    response = subscribe(client, subscription, REMOTE_ADDR="10.9.9.9")

    assert response.status_code in {200, 429}
    result = payload(response)
    if not result["subscribed"]:
        assert result["userErrors"]
        assert all(error["path"][0] == "subscribeToBackInStock" for error in result["userErrors"])
        assert Subscription.objects.count() == before


@pytest.mark.parametrize("body", ["null", "5", '"x"', "true", "[]"])
def test_a_json_body_that_is_not_an_object_is_a_400_not_a_500(client, db, body):
    response = client.post(URL, body, content_type="application/json")

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["body"]


@pytest.mark.parametrize(
    "body",
    [
        b'{"query": "{ backInStockEnabled }", "x": "\xff"}',  # not UTF-8
        b'{"query": "{ backInStockEnabled }", "x": "\xed\xa0\x80"}',  # an encoded surrogate
    ],
)
def test_a_body_that_is_not_utf_8_is_a_400_not_a_500(client, db, body):
    response = client.post(URL, body, content_type="application/json")

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["body"]


def _subscribe_sweden(email: str) -> str:
    return (
        f'subscribeToBackInStock(input: {{item: "12366-23400", shipTo: {{countryCode: "SE"}}, '
        f'email: "{email}"}}) {{ subscribed }}'
    )


def _refused_by_graphql(response, caplog) -> str:
    """A request GraphQL refuses: HTTP 200 (400 for what is not an operation), GraphQL's error
    shape with the reason, no data, nothing stored, nothing logged as our error."""
    assert response.status_code in {200, 400}
    body = response.json()
    assert body.get("data") is None
    assert isinstance(body["errors"], list) and body["errors"], body
    messages = " ".join(error["message"] for error in body["errors"])
    assert "Internal server error" not in messages
    assert Subscription.objects.count() == 0
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert not any(r.exc_info for r in caplog.records)
    return messages


@pytest.mark.parametrize(
    ("query", "variables", "said"),
    [
        (MUTATION, {"input": {**SWEDEN, "item": 12366}}, "String cannot represent a non string"),
        (MUTATION, {"input": {**SWEDEN, "shipTo": {"countryCode": 46}}}, "countryCode"),
        (MUTATION, {"input": "12366-23400"}, "BackInStockSubscribeInput"),
        (MUTATION, {"input": {**SWEDEN, "email": ["ann@example.com"]}}, "email"),
        (MUTATION, {"input": {**SWEDEN, "size": "M"}}, "size"),
        (
            "mutation ($item: Boolean!) { subscribeToBackInStock(input: {item: $item, "
            'shipTo: {countryCode: "SE"}}) { subscribed } }',
            {"item": True},
            "Boolean!",
        ),
        (
            "mutation ($input: NoSuchInput!) { subscribeToBackInStock(input: $input) "
            "{ subscribed } }",
            {"input": SWEDEN},
            "NoSuchInput",
        ),
    ],
    ids=[
        "int for string",
        "int for nested string",
        "string for input object",
        "list for string",
        "unknown input field",
        "declared type not the schema's",
        "unknown declared type",
    ],
)
def test_a_variable_of_the_wrong_type_is_the_client_s_error_not_ours(
    client, caplog, query, variables, said
):
    body = {"query": query, "variables": variables}
    with caplog.at_level(logging.INFO):
        response = client.post(URL, body, content_type="application/json")

    assert said in _refused_by_graphql(response, caplog)


@pytest.mark.parametrize(
    ("document", "operation_name"),
    [
        (
            f"mutation {{ {_subscribe_sweden('ann@example.com')} }} "
            f"mutation {{ {_subscribe_sweden('bob@example.com')} }}",
            None,
        ),
        (
            f"mutation {{ {_subscribe_sweden('ann@example.com')} }} "
            f"mutation B {{ {_subscribe_sweden('bob@example.com')} }}",
            "B",
        ),
        (
            f"mutation A {{ {_subscribe_sweden('ann@example.com')} }} "
            f"mutation B {{ {_subscribe_sweden('bob@example.com')} }}",
            None,
        ),
        (
            f"mutation A {{ {_subscribe_sweden('ann@example.com')} }} "
            f"mutation B {{ {_subscribe_sweden('bob@example.com')} }}",
            "C",
        ),
        (
            f"mutation A {{ {_subscribe_sweden('ann@example.com')} }} "
            f"mutation A {{ {_subscribe_sweden('bob@example.com')} }}",
            "A",
        ),
    ],
    ids=["two anonymous", "anonymous and named", "two named, no name", "unknown name", "same name"],
)
def test_a_document_whose_operation_is_not_one_is_refused_and_runs_nothing(
    client, caplog, document, operation_name
):
    body = {"query": document}
    if operation_name is not None:
        body["operationName"] = operation_name
    with caplog.at_level(logging.INFO):
        response = client.post(URL, body, content_type="application/json")

    assert "operation" in _refused_by_graphql(response, caplog).lower()


def test_the_operation_named_is_the_one_run(client):
    document = (
        f"mutation A {{ {_subscribe_sweden('ann@example.com')} }} "
        f"mutation B {{ {_subscribe_sweden('bob@example.com')} }}"
    )
    response = client.post(
        URL, {"query": document, "operationName": "B"}, content_type="application/json"
    )

    assert response.json() == {"data": {"subscribeToBackInStock": {"subscribed": True}}}
    assert list(Subscription.objects.values_list("email", flat=True)) == ["bob@example.com"]
