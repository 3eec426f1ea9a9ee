"""Property tests of what the operations endpoints read from a request: the bearer token of
/metrics, the correlation id header and the method. Whatever is sent: no 5xx, errors in the
contract's shape, and a refused scrape changes no figure."""

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from config.correlation import SAFE_CORRELATION_ID
from operations.metrics import metric_count, metrics_store

pytestmark = pytest.mark.django_db

TOKEN = "fuzz-metrics-token"
HEADER_TEXT = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=200)
FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(autouse=True)
def _metrics_token(settings):
    settings.METRICS_TOKEN = TOKEN


@FUZZ
@given(authorization=HEADER_TEXT | st.builds("Bearer {}".format, HEADER_TEXT))
def test_any_authorization_but_the_token_is_refused_with_401_in_the_contract_shape(authorization):
    metric_count("restocks", 1)
    before = metrics_store().read()
    response = Client().get("/metrics", HTTP_AUTHORIZATION=authorization)
    scheme, _, given_token = authorization.partition(" ")
    if scheme.lower() == "bearer" and given_token.strip() == TOKEN:
        assert response.status_code == 200
        return
    assert response.status_code == 401
    assert list(response.json()) == ["errors"]
    assert set(response.json()["errors"]) == {"authorization"}
    assert TOKEN not in response.content.decode()
    after = metrics_store().read()
    assert {k: v for k, v in after.items() if "restocks" in k} == {
        k: v for k, v in before.items() if "restocks" in k
    }


@FUZZ
@given(correlation_id=HEADER_TEXT)
def test_any_correlation_id_header_is_answered_with_a_clean_id_and_no_5xx(correlation_id):
    response = Client().get("/no/such/page", HTTP_X_CORRELATION_ID=correlation_id)
    assert response.status_code == 404
    returned = response["X-Correlation-ID"]
    assert SAFE_CORRELATION_ID.fullmatch(returned)
    if SAFE_CORRELATION_ID.fullmatch(correlation_id):
        assert returned == correlation_id  # a storefront's own id is echoed as given


@FUZZ
@given(
    method=st.sampled_from(["POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"]),
    path=st.sampled_from(["/healthz", "/readyz", "/metrics"]),
)
def test_other_methods_on_the_operations_endpoints_are_4xx(method, path):
    response = Client().generic(method, path, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert 400 <= response.status_code < 500
    assert list(response.json()) == ["errors"]
