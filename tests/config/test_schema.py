"""The OpenAPI schema: the storefront developers' reference."""

import re

import pytest
from django.contrib.staticfiles import finders
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


SUBSCRIBE_PATHS = [
    "/api/checkout-api/back-in-stock-subscription",
    "/api/shop-api/back-in-stock-subscription",
]
SHOP_PATHS = {
    ("/api/shop-api/back-in-stock-subscription", "post"),
    ("/api/shop-api/back-in-stock-subscriptions", "get"),
    ("/api/shop-api/back-in-stock-subscriptions", "delete"),
}


def operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def error_examples(operation, status):
    content = operation["responses"][str(status)]["content"]["application/json"]
    return [example["value"]["errors"] for example in content["examples"].values()]


def test_the_schema_has_both_security_schemes(schema):
    schemes = schema["components"]["securitySchemes"]

    assert schemes["API-Authorization"] == {
        "type": "apiKey",
        "in": "header",
        "name": "API-Authorization",
        "description": schemes["API-Authorization"]["description"],
    }
    assert schemes["IntegrationBearer"]["type"] == "http"
    assert schemes["IntegrationBearer"]["scheme"] == "bearer"


def test_each_operation_asks_for_the_credentials_of_its_api(schema):
    for path, method, operation in operations(schema):
        if (path, method) in SHOP_PATHS:
            assert operation["security"] == [{"API-Authorization": []}], path
        elif path == "/api/integration-api/stock":
            assert operation["security"] == [{"IntegrationBearer": []}]
        else:
            assert operation.get("security") in (None, [], [{}]), path


def test_the_integration_api_documents_its_own_errors(schema):
    operation = schema["paths"]["/api/integration-api/stock"]["post"]

    assert set(operation["responses"]) == {"200", "400", "403", "411", "413", "415"}
    bad_fields = {key for errors in error_examples(operation, 400) for key in errors}
    assert bad_fields and all(key.startswith("stock[") for key in bad_fields)
    assert all("backInStock" not in errors for errors in error_examples(operation, 403))
    assert "4194304 bytes" in str(error_examples(operation, 413))


def test_list_and_erase_take_no_body_and_document_no_body_errors(schema):
    item = schema["paths"]["/api/shop-api/back-in-stock-subscriptions"]
    for method in ("get", "delete"):
        assert set(item[method]["responses"]) == {"200", "400", "403"}
        assert all("backInStock" not in e for e in error_examples(item[method], 403))


@pytest.mark.parametrize("path", SUBSCRIBE_PATHS)
def test_subscribe_documents_retry_after_on_429_and_back_in_stock_off(schema, path):
    operation = schema["paths"][path]["post"]

    assert "Retry-After" in operation["responses"]["429"]["headers"]
    assert {"backInStock"} in [set(e) for e in error_examples(operation, 403)]
    assert "8192 bytes" in str(error_examples(operation, 413))
    assert "Content-Length" in str(error_examples(operation, 411))
    assert "200" not in operation["responses"]


@pytest.mark.parametrize("path", SUBSCRIBE_PATHS)
def test_subscribe_request_examples_are_real_catalog_values(schema, path):
    content = schema["paths"][path]["post"]["requestBody"]["content"]["application/json"]
    examples = [example["value"] for example in content["examples"].values()]

    assert examples
    for example in examples:
        assert example["item"] == "12366-23400"
        assert example["shipTo"]["country"] in {"SE", "US"}
        assert "string" not in str(example)


def test_descriptions_hold_no_internal_notes_and_explain_the_status_values(schema):
    text = str(schema)
    assert "ShipToField" not in text
    assert "Serializer" not in text

    status = schema["components"]["schemas"]["SubscriptionOutput"]["properties"]["status"]
    for value in ("pending", "subscribed", "failed"):
        assert f"`{value}`:" in status["description"]


def test_the_schema_opens_in_a_browser_as_text(client):
    response = client.get("/api/schema", HTTP_ACCEPT="text/html,application/xhtml+xml,*/*;q=0.8")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response["Content-Disposition"].startswith("inline")
    assert response.content.startswith(b"openapi: 3.")


@pytest.mark.parametrize(("query", "accept"), [("?format=json", "*/*"), ("", "application/json")])
def test_the_schema_is_json_when_asked(client, query, accept):
    response = client.get(f"/api/schema{query}", HTTP_ACCEPT=accept)

    assert response["Content-Type"] == "application/json"
    assert response.json()["openapi"].startswith("3.")


def test_openapi_tools_get_the_openapi_media_types(client):
    yaml_answer = client.get("/api/schema", HTTP_ACCEPT="application/vnd.oai.openapi")
    json_answer = client.get("/api/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert yaml_answer["Content-Type"].startswith("application/vnd.oai.openapi")
    assert json_answer["Content-Type"].startswith("application/vnd.oai.openapi+json")


@pytest.mark.parametrize("page", ["/api/docs", "/api/redoc"])
def test_the_docs_pages_reference_no_other_host(client, page):
    response = client.get(page)

    assert response.status_code == 200
    html = response.content.decode()
    assert not re.findall(r"(?:https?:)?//[\w.-]+", html)
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets
    for asset in assets:
        assert asset.startswith("/static/drf_spectacular_sidecar/"), asset
        assert finders.find(asset.removeprefix("/static/")), f"{asset} is not shipped"


def test_every_answer_of_every_operation_is_described(schema):
    for path, method, operation in operations(schema):
        for status, response in operation["responses"].items():
            assert response["description"].strip(), f"{method} {path} {status}"
