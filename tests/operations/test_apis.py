"""Liveness and readiness (CONTRACT §9) against the real PostgreSQL, Redis and broker."""

import pytest
from django.core.management import call_command
from django.test import Client

from tests.redis_server import free_port
from tests.worker import celery_broker

pytestmark = pytest.mark.django_db


@pytest.fixture
def client() -> Client:
    return Client()


def nowhere() -> str:
    """A Redis URL on a port nothing listens on."""
    return f"redis://127.0.0.1:{free_port()}/0"


def test_liveness_answers_ok_without_touching_anything(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readiness_is_ok_when_database_redis_broker_and_migrations_are(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "redis": "ok", "broker": "ok", "migrations": "ok"},
    }


def test_readiness_is_503_naming_redis_when_redis_cannot_be_reached(client, settings):
    settings.REDIS_URL = nowhere()
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "failing"
    assert body["checks"]["redis"].startswith("failing: ")
    assert body["checks"]["database"] == body["checks"]["broker"] == "ok"


def test_readiness_is_503_naming_the_broker_when_the_broker_cannot_be_reached(client):
    with celery_broker(nowhere()):
        response = client.get("/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["broker"].startswith("failing: ")
    assert checks["redis"] == checks["database"] == "ok"


def test_readiness_never_shows_a_url_or_password_of_a_failing_service(client, settings):
    settings.REDIS_URL = f"redis://:s3cret-pass@127.0.0.1:{free_port()}/0"
    response = client.get("/readyz")
    assert "s3cret" not in response.content.decode()
    assert "127.0.0.1" not in response.content.decode()


def test_readiness_is_ok_without_redis_in_the_demo(client, settings):
    settings.REDIS_URL = ""
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"]["redis"] == "not configured"


@pytest.mark.django_db(transaction=True)
def test_readiness_is_503_while_a_migration_is_not_applied(client):
    call_command("migrate", "operations", "zero", verbosity=0)
    try:
        response = client.get("/readyz")
    finally:
        call_command("migrate", "operations", verbosity=0)
    assert response.status_code == 503
    assert response.json()["checks"]["migrations"] == "failing: 1 not applied"


@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_health_endpoints_refuse_other_methods_than_get_in_the_contract_shape(client, method):
    for path in ("/healthz", "/readyz", "/metrics"):
        response = getattr(client, method)(path)
        assert response.status_code == 405
        assert set(response.json()["errors"]) == {"method"}
        assert response["Allow"] == "GET, HEAD"


def test_probes_and_scrapes_over_plain_http_are_not_redirected_to_https(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    assert client.get("/metrics").status_code == 403  # closed: no METRICS_TOKEN, not a redirect
    assert client.get("/api/docs").status_code == 301


def test_probes_by_address_are_answered_whatever_the_allowed_hosts(client):
    assert client.get("/healthz", HTTP_HOST="10.0.3.7:8000").json() == {"status": "ok"}
    assert client.get("/readyz", HTTP_HOST="10.0.3.7").status_code == 200
    assert client.get("/metrics", HTTP_HOST="10.0.3.7").status_code == 400


def test_readiness_answers_503_in_seconds_while_the_broker_hangs(client, db, hung_broker):
    import time

    started = time.monotonic()
    first = client.get("/readyz")
    second = client.get("/readyz")  # while the first check still waits: at once
    elapsed = time.monotonic() - started

    assert (first.status_code, second.status_code) == (503, 503)
    assert first.json()["checks"]["broker"].startswith("failing: BrokerCheckTimeout")
    assert elapsed < 8, f"readiness took {elapsed:.1f} s"
