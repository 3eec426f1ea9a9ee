"""``gunicorn config.wsgi`` as documented: gunicorn.conf.py, production settings, static files."""

import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.web import manage, production_environment, running_web
from tests.worker import worker_environment

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

SLOW_CLIENTS = 3
TOKEN = "integration-token-for-slow-clients"


@pytest.fixture
def web(tmp_path) -> Iterator[tuple[str, Path]]:
    """gunicorn with gunicorn.conf.py and production settings, one process, after collectstatic.

    Yields the base URL and the log file, which is complete once the block is left.
    """
    env = production_environment(
        DJANGO_STATIC_ROOT=str(tmp_path / "static"),
        LOG_FORMAT="json",
        INTEGRATION_API_TOKEN=TOKEN,
    )
    manage("collectstatic", "--noinput", "-v", "0", env=env)
    log_path = tmp_path / "web.log"
    with running_web(env=env, log_path=log_path, workers=1) as url:
        yield url, log_path


def log_lines(log_path: Path) -> list[dict]:
    return [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]


def trickle(url: str, stop: threading.Event) -> None:
    """A client that sends a request's headers, then its body one byte at a time (to an API that
    reads the body, being authorised)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(
            b"POST /api/integration-api/stock HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Authorization: Bearer " + TOKEN.encode() + b"\r\n"
            b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
        )
        while not stop.wait(0.1):
            sock.sendall(b" ")


def test_three_slow_clients_do_not_delay_a_fourth_request_by_more_than_a_second(
    web, record_property
):
    url, _ = web
    stop = threading.Event()
    clients = [
        threading.Thread(target=trickle, args=(url, stop), daemon=True) for _ in range(SLOW_CLIENTS)
    ]
    for client in clients:
        client.start()
    try:
        time.sleep(1.5)  # each slow client now holds whatever serves its request
        started = time.monotonic()
        response = requests.get(f"{url}/healthz", timeout=10)
        elapsed = time.monotonic() - started
    finally:
        stop.set()
        for client in clients:
            client.join(timeout=5)
    record_property("fourth_request_seconds", round(elapsed, 3))
    print(f"the fourth request took {elapsed:.3f} s")
    assert response.status_code == 200
    assert elapsed < 1.0, f"the fourth request took {elapsed:.2f} s"


def test_the_admin_and_its_static_files_are_served_with_debug_off(web):
    url, _ = web
    page = requests.get(f"{url}/admin/login/", timeout=10)
    assert page.status_code == 200
    assets = re.findall(r'(?:href|src)="(/static/[^"]+)"', page.text)
    assert any(asset.endswith(".css") for asset in assets)
    for asset in assets:
        response = requests.get(f"{url}{asset}", timeout=10)
        assert response.status_code == 200, asset
        assert "max-age=" in response.headers["Cache-Control"]


def test_the_access_log_leaves_out_query_strings_and_shutdown_logs_no_error(web):
    url, log_path = web
    requests.get(
        f"{url}/api/shop-api/back-in-stock-subscriptions?email=ann@example.com", timeout=10
    )
    assert requests.get(f"{url}/healthz", timeout=10).status_code == 200
    time.sleep(0.5)
    lines = log_lines(log_path)
    access = [line for line in lines if line["logger"] == "gunicorn.access"]
    assert any(
        "GET /api/shop-api/back-in-stock-subscriptions HTTP/1.1" in a["message"] for a in access
    )
    assert "ann@example.com" not in log_path.read_text()
    # gunicorn's own lines belong to no request: a dash, never null, for the correlation id.
    assert all(isinstance(line["correlation_id"], str) for line in lines)
    assert any(line["correlation_id"] == "-" for line in lines)


def test_a_chunked_body_is_answered_411_saying_a_content_length_is_needed(web):
    """A real client's chunked request, through gunicorn (which passes no Content-Length)."""
    url, _ = web
    body = b'{"item": "12366-23400", "shipTo": {"country": "SE"}, "email": "ann@example.com"}'

    response = requests.post(  # a generator is sent with Transfer-Encoding: chunked
        f"{url}/api/checkout-api/back-in-stock-subscription",
        data=(part for part in [body[:20], body[20:]]),
        headers={"Content-Type": "application/json"},
        timeout=10,
    )

    assert response.request.headers["Transfer-Encoding"] == "chunked"
    assert "Content-Length" not in response.request.headers
    assert response.status_code == 411
    assert response.json() == {
        "errors": {
            "body": "Send the body with a Content-Length header: "
            "bodies of unknown length (Transfer-Encoding) are not accepted."
        }
    }
    assert response.headers["X-Correlation-ID"]


def test_a_normal_stop_of_the_web_process_logs_no_error(tmp_path):
    env = worker_environment(LOG_FORMAT="json")
    log_path = tmp_path / "web.log"
    with running_web(env=env, log_path=log_path, workers=2) as url:
        assert requests.get(f"{url}/healthz", timeout=10).status_code == 200
    lines = log_lines(log_path)
    assert any("Shutting down" in line["message"] for line in lines)
    assert [line for line in lines if line["level"] in ("ERROR", "CRITICAL")] == []
