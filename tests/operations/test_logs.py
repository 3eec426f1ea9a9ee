"""Log lines: JSON or console, correlation and subscription ids, no address, each 4xx once."""

import io
import json
import logging
import logging.config
import uuid
from collections.abc import Iterator

import pytest
from django.conf import settings
from django.test import Client

from config.correlation import correlation_id_set
from klaviyo_sync.tasks import push_subscription
from operations.logs import logging_config
from tests.operations.conftest import subscribe_in_sweden

pytestmark = pytest.mark.django_db


def configure(log_format: str) -> io.StringIO:
    """Logging as ``LOG_FORMAT`` makes it, into a string instead of stderr."""
    config = logging_config(log_format=log_format, level="INFO")
    stream = io.StringIO()
    config["handlers"]["console"]["stream"] = stream
    logging.config.dictConfig(config)
    return stream


@pytest.fixture
def json_lines() -> Iterator:
    """Logging as in production (LOG_FORMAT=json); a reader of the lines written so far."""
    stream = configure("json")
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines() if line]
    finally:
        logging.config.dictConfig(settings.LOGGING)


def test_json_format_writes_one_object_per_line_with_time_level_logger_and_message(json_lines):
    logging.getLogger("backinstock.test").warning("stock is %d", 3)
    [line] = json_lines()
    assert line["level"] == "WARNING"
    assert line["logger"] == "backinstock.test"
    assert line["message"] == "stock is 3"
    assert line["time"].startswith("20")
    assert "correlation_id" in line


def test_console_format_writes_readable_lines():
    stream = configure("console")
    try:
        logging.getLogger("backinstock.test").warning("stock is %d", 3)
    finally:
        logging.config.dictConfig(settings.LOGGING)
    line = stream.getvalue().strip()
    assert line.endswith("WARNING backinstock.test [-] stock is 3")


def test_work_without_a_correlation_id_shows_a_dash_in_console_lines():
    stream = configure("console")
    try:
        logging.getLogger("backinstock.test").info("outside any request")
        with correlation_id_set("order-42"):
            logging.getLogger("backinstock.test").info("inside one")
        logging.getLogger("backinstock.test").info("after it")
    finally:
        logging.config.dictConfig(settings.LOGGING)
    lines = stream.getvalue().splitlines()
    assert [line.split(" ", 5)[4] for line in lines] == ["[-]", "[order-42]", "[-]"]
    assert "None" not in stream.getvalue()


def test_work_without_a_correlation_id_shows_a_dash_in_json_lines(json_lines):
    logging.getLogger("backinstock.test").info("outside any request")
    with correlation_id_set("order-42"):
        logging.getLogger("backinstock.test").info("inside one")

    assert [line["correlation_id"] for line in json_lines()] == ["-", "order-42"]


def test_no_line_around_a_task_has_a_null_correlation_id(
    json_lines, catalog, back_in_stock_on, settings
):
    settings.KLAVIYO_API_KEY = ""  # the push logs that nothing is sent
    _, lines = push_logged(json_lines)
    assert all(isinstance(line["correlation_id"], str) and line["correlation_id"] for line in lines)
    [after] = [line for line in lines if line["logger"] == "after"]
    assert after["correlation_id"] == "-"


def test_a_requests_lines_carry_its_correlation_id_which_the_answer_returns(json_lines):
    given = uuid.uuid4().hex
    response = Client().get("/no/such/page", HTTP_X_CORRELATION_ID=given)
    assert response["X-Correlation-ID"] == given
    [line] = [line for line in json_lines() if line["logger"] == "django.request"]
    assert line["correlation_id"] == given


def test_an_address_in_a_query_string_is_masked_in_every_line(json_lines):
    logging.getLogger("django.server").info(
        '"%s" %s',
        "GET /api/shop-api/back-in-stock-subscriptions?email=Ann%40Example.com HTTP/1.1",
        200,
    )
    [line] = json_lines()
    assert "Example.com" not in line["message"]
    assert "email=***" in line["message"]


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("post", "/api/checkout-api/back-in-stock-subscription", "{bad", 400),
        ("post", "/api/checkout-api/back-in-stock-subscription", '{"item": "1-1"}', 400),
        ("get", "/api/shop-api/back-in-stock-subscriptions?email=ann@example.com", None, 403),
        ("get", "/no/such/page", None, 404),
        ("delete", "/api/checkout-api/back-in-stock-subscription", None, 405),
    ],
)
def test_every_4xx_is_logged_once(json_lines, back_in_stock_on, method, path, body, status):
    kwargs = {"data": body, "content_type": "application/json"} if body else {}
    response = getattr(Client(), method)(path, **kwargs)
    assert response.status_code == status
    lines = json_lines()
    assert len([line for line in lines if line["level"] in ("WARNING", "ERROR")]) == 1
    assert "ann@example.com" not in json.dumps(lines)


def push_logged(json_lines) -> tuple[int, list[dict]]:
    """Subscribe to size M in Sweden, run its push task here, then log one line "after"."""
    subscription_id = subscribe_in_sweden("a@example.com")
    push_subscription.apply(args=[subscription_id])
    logging.getLogger("after").info("after the task")
    return subscription_id, json_lines()


def test_lines_logged_while_a_subscription_is_pushed_carry_its_id(
    json_lines, catalog, back_in_stock_on, settings
):
    settings.KLAVIYO_API_KEY = ""  # the push logs that nothing is sent
    subscription_id, lines = push_logged(json_lines)
    [pushed] = [line for line in lines if "stays pending" in line["message"]]
    assert pushed["subscription_id"] == subscription_id
    [after] = [line for line in lines if line["logger"] == "after"]
    assert "subscription_id" not in after


def test_lines_logged_after_klaviyo_answered_an_error_carry_klaviyo_s_error_id(
    json_lines, demo_catalog, back_in_stock_on, sandbox
):
    sandbox.add_fault("error", status=503, count=1, path_prefix="/api/back-in-stock-subscriptions")
    subscription_id, lines = push_logged(json_lines)
    retried = [line for line in lines if "klaviyo_error_id" in line]
    assert retried, lines
    assert all(line["subscription_id"] == subscription_id for line in retried)
    assert uuid.UUID(retried[0]["klaviyo_error_id"])
    [after] = [line for line in lines if line["logger"] == "after"]
    assert "klaviyo_error_id" not in after
