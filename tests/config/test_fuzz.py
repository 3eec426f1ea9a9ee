"""Fuzzing the API with schemathesis against the project's own OpenAPI schema.

Every generated request, valid or not, must get an answer that the schema documents: a
status it lists, a body of its shape, and never a 5xx.
"""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

schema = schemathesis.openapi.from_wsgi("/api/schema?format=json", get_wsgi_application())

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
SHOP_KEY = "fuzz-shop-key"
INTEGRATION_TOKEN = "fuzz-integration-token"


@pytest.fixture
def fuzz_setup(settings, catalog, back_in_stock_on):
    # The WSGI handler closes the database connection after each request, as in production;
    # here it must stay open inside the test's transaction (Django's test client does the same).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    settings.SHOP_API_KEY = SHOP_KEY
    settings.INTEGRATION_API_TOKEN = INTEGRATION_TOKEN
    settings.SUBSCRIBE_RATE_PER_CLIENT = "none"
    settings.SUBSCRIBE_RATE_PER_EMAIL = "none"
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.mark.slow
@schema.parametrize()
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@pytest.mark.usefixtures("fuzz_setup")
def test_every_answer_matches_the_schema_and_none_is_a_5xx(case):
    # The schema declares the credentials (API-Authorization, the Bearer token): a case that
    # sends them sends the real ones; a case that leaves them out (negative data) stays without.
    sent = {name.lower() for name in case.headers or {}}
    credentials = {
        "API-Authorization": SHOP_KEY,
        "Authorization": f"Bearer {INTEGRATION_TOKEN}",
    }
    case.call_and_validate(
        headers={name: value for name, value in credentials.items() if name.lower() in sent},
        checks=CHECKS,
    )
