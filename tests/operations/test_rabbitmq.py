"""The whole path on RabbitMQ: a private node (never the machine's shared one on 5672), the web
process and a Celery worker with beat, PostgreSQL, Redis and the Klaviyo sandbox."""

from collections import Counter
from collections.abc import Iterator

import pytest
import requests
from django.db import connection

from backinstock.models import Subscription
from tests.rabbitmq_server import PrivateRabbitMQ
from tests.web import production_environment, running_web
from tests.worker import running_worker, wait_until

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.usefixtures("demo_catalog", "back_in_stock_on"),
]

SUBSCRIBE_PATH = "/api/checkout-api/back-in-stock-subscription"
KLAVIYO_SUBSCRIPTIONS = "/api/back-in-stock-subscriptions"
OUTAGE_SECONDS = 20


@pytest.fixture
def rabbitmq() -> Iterator[PrivateRabbitMQ]:
    node = PrivateRabbitMQ().start()
    try:
        yield node
    finally:
        node.remove()


def subscribed_count() -> int:
    connection.close()  # see the worker's commits
    return Subscription.objects.filter(status="subscribed").count()


def arrivals(sandbox) -> Counter[str]:
    return Counter(e["email"] for e in sandbox.snapshot()["back_in_stock_subscriptions"])


def subscribe(web: str, email: str) -> int:
    body = {"item": "12366-23400", "shipTo": {"country": "SE"}, "email": email}
    try:
        return requests.post(f"{web}{SUBSCRIBE_PATH}", json=body, timeout=15).status_code
    except requests.RequestException:
        return 0


def test_subscriptions_and_their_delayed_retries_travel_through_quorum_queues(
    rabbitmq, sandbox, tmp_path
):
    """Klaviyo fails the first pushes with 503: their retries (countdowns) wait in RabbitMQ's
    delayed delivery, not in the worker, and arrive; the sweep is slowed so that it cannot be
    what delivers them."""
    sandbox.add_fault("error", status=503, count=3, path_prefix=KLAVIYO_SUBSCRIPTIONS)
    overrides = {
        "CELERY_BROKER_URL": rabbitmq.url,
        "SUBSCRIBE_RATE_PER_CLIENT": "none",
        "KLAVIYO_SWEEP_SECONDS": "600",
    }
    emails = [f"rabbit{i}@example.com" for i in range(5)]
    with (
        running_web(env=production_environment(**overrides), log_path=tmp_path / "web.log") as web,
        running_worker(log_path=tmp_path / "worker.log", beat=True, **overrides),
    ):
        assert [subscribe(web, email) for email in emails] == [201] * 5
        wait_until(lambda: subscribed_count() == 5, timeout=90, message="not every one arrived")
        queues = rabbitmq.queues()
    assert sandbox.faults.active() == [], "Klaviyo's failures were never met"
    assert arrivals(sandbox) == dict.fromkeys(emails, 1)
    assert queues["celery"] == "quorum"
    assert "ERROR" not in (tmp_path / "worker.log").read_text().replace("ERROR/", "")


def test_rabbitmq_down_during_steady_subscribing_loses_and_doubles_nothing(
    rabbitmq, sandbox, tmp_path, record_property
):
    """The node killed for 20 s while a storefront keeps subscribing, then started again (its
    queues' data kept): every answer is 201 (the row is the outbox; a failed publish is logged),
    the worker reconnects by itself, and every subscription reaches Klaviyo exactly once."""
    overrides = {
        "CELERY_BROKER_URL": rabbitmq.url,
        "SUBSCRIBE_RATE_PER_CLIENT": "none",
        "KLAVIYO_SWEEP_SECONDS": "2",
        "KLAVIYO_SWEEP_AFTER_SECONDS": "3",
    }
    answers: dict[str, int] = {}

    def post_for(seconds: float) -> None:
        import time

        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            email = f"outage{len(answers)}@example.com"
            answers[email] = subscribe(web, email)
            time.sleep(0.5)

    with (
        running_web(env=production_environment(**overrides), log_path=tmp_path / "web.log") as web,
        running_worker(log_path=tmp_path / "worker.log", beat=True, **overrides) as worker,
    ):
        post_for(3)
        rabbitmq.stop()
        post_for(OUTAGE_SECONDS)
        rabbitmq.start()
        post_for(3)
        wait_until(
            lambda: subscribed_count() == len(answers),
            timeout=120,
            message="not every subscription arrived after the outage",
        )
        worker_alive = worker.poll() is None
    record_property("subscriptions", len(answers))
    assert set(answers.values()) == {201}
    assert worker_alive, "the worker exited instead of reconnecting"
    assert arrivals(sandbox) == dict.fromkeys(answers, 1)
