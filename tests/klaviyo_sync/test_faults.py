"""Fault tests: every accepted subscription reaches Klaviyo exactly once, whatever fails.

A real Celery worker with beat (the sweep every 2 s), PostgreSQL, Redis and the sandbox.
"""

from collections import Counter

import pytest
from django.db import connection

from backinstock.models import Subscription
from tests.redis_server import PrivateRedis
from tests.worker import broker_purge, celery_broker, running_worker, wait_until

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.usefixtures("demo_catalog", "back_in_stock_on"),
]

FAST_SWEEP = {"KLAVIYO_SWEEP_SECONDS": "2", "KLAVIYO_SWEEP_AFTER_SECONDS": "3"}


def post(api_client, email: str, country: str = "SE", state: str | None = None):
    ship_to = {"country": country, **({"state": state} if state else {})}
    body = {"item": "12366-23400", "shipTo": ship_to, "email": email}
    return api_client.post("/api/checkout-api/back-in-stock-subscription", body, format="json")


def all_subscribed(expected: int):
    def check() -> bool:
        connection.close()
        return Subscription.objects.filter(status="subscribed").count() == expected

    return check


def assert_each_arrived_once(sandbox, emails: list[str]) -> None:
    events = sandbox.snapshot()["back_in_stock_subscriptions"]
    counts = Counter((event["email"], event["variant_id"]) for event in events)
    assert sorted(email for email, _ in counts) == sorted(emails)
    duplicates = {key: n for key, n in counts.items() if n > 1}
    assert duplicates == {}


def test_klaviyo_429s_and_5xx_for_a_while_lose_and_double_nothing(
    sandbox, api_client, settings, tmp_path
):
    settings.SUBSCRIBE_RATE_PER_CLIENT = "none"
    sandbox.add_fault("error", status=503, count=12, path_prefix="/api/back-in-stock-subscriptions")
    sandbox.add_fault("throttle", retry_after=1, count=8, path_prefix="/api/catalog-variants")
    sandbox.add_fault("error", status=500, seconds=3, path_prefix="/api/profile-import")
    sandbox.add_fault("drop", count=3, path_prefix="/api/catalog-items")
    emails = [f"shopper{i}@example.com" for i in range(20)]
    broker_purge()

    with running_worker(log_path=tmp_path / "worker.log", beat=True, **FAST_SWEEP):
        assert {post(api_client, email).status_code for email in emails} == {201}
        wait_until(all_subscribed(20), timeout=120, message="not every subscription arrived")

    assert_each_arrived_once(sandbox, emails)


def test_redis_stopped_and_restarted_during_a_burst_loses_and_doubles_nothing(
    sandbox, api_client, settings, tmp_path
):
    redis_server = PrivateRedis().start()
    settings.SUBSCRIBE_RATE_PER_CLIENT = "none"
    settings.REDIS_URL = f"{redis_server.url}/0"
    settings.CELERY_BROKER_URL = f"{redis_server.url}/1"
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": settings.REDIS_URL,
            "OPTIONS": {"socket_connect_timeout": 0.25, "socket_timeout": 0.25},
        }
    }
    emails = [f"burst{i}@example.com" for i in range(30)]
    try:
        with (
            celery_broker(settings.CELERY_BROKER_URL),
            running_worker(log_path=tmp_path / "worker.log", beat=True, **FAST_SWEEP),
        ):
            answers = [post(api_client, email).status_code for email in emails[:10]]
            redis_server.stop()
            answers += [post(api_client, email).status_code for email in emails[10:20]]
            redis_server.start()
            answers += [post(api_client, email).status_code for email in emails[20:]]

            assert answers == [201] * 30
            wait_until(all_subscribed(30), timeout=180, message="not every subscription arrived")
    finally:
        redis_server.stop()

    assert_each_arrived_once(sandbox, emails)
