"""The OpenAPI schema: the storefront developers' reference."""

import pytest
from django.core.management import call_command


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    from io import StringIO

    import yaml

    out = StringIO()
    with django_db_blocker.unblock():
        call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)
    return yaml.safe_load(out.getvalue())


def test_every_endpoint_is_documented(schema):
    assert set(schema["paths"]) == {
        "/api/checkout-api/back-in-stock-subscription",
        "/api/shop-api/back-in-stock-subscription",
        "/api/shop-api/back-in-stock-subscriptions",
        "/api/integration-api/stock",
    }


def test_the_subscribe_request_and_error_shapes_are_documented(schema):
    operation = schema["paths"]["/api/checkout-api/back-in-stock-subscription"]["post"]
    request = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    request_schema = schema["components"]["schemas"][request.rsplit("/", 1)[1]]

    assert set(request_schema["properties"]) == {"item", "shipTo", "email", "language"}
    assert set(request_schema["required"]) == {"item", "shipTo", "email"}
    assert {"201", "400", "403", "413", "415", "429"} <= set(operation["responses"])
    error_ref = operation["responses"]["400"]["content"]["application/json"]["schema"]["$ref"]
    assert error_ref.endswith("/Errors")


def test_swagger_ui_is_served(client):
    response = client.get("/api/docs")
    assert response.status_code == 200
    assert b"swagger" in response.content.lower()
