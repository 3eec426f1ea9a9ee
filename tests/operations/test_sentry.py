"""Sentry when SENTRY_DSN is set: Django and Celery integrations, no personal data."""

import gzip
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.worker import PROJECT_ROOT, worker_environment

pytestmark = pytest.mark.django_db

REPORT = """
import django, sentry_sdk
django.setup()
client = sentry_sdk.get_client()
print(client.is_active(), client.options["send_default_pii"], sorted(client.integrations))

def subscribe():
    email = "ann@example.com"
    raise ValueError("the variant vanished")

try:
    subscribe()
except ValueError:
    sentry_sdk.capture_exception()
sentry_sdk.flush(5)
"""


def test_errors_reach_sentry_from_django_and_celery_without_personal_data():
    received: list[bytes] = []

    class Ingest(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            received.append(body)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Ingest)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        dsn = f"http://publickey@127.0.0.1:{server.server_address[1]}/1"
        result = subprocess.run(
            [sys.executable, "-c", REPORT],
            cwd=PROJECT_ROOT,
            env=worker_environment(SENTRY_DSN=dsn),
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
    finally:
        server.shutdown()
    active, pii, integrations = result.stdout.split(" ", 2)
    assert (active, pii) == ("True", "False")
    assert "'django'" in integrations
    assert "'celery'" in integrations
    [event] = received
    assert b"the variant vanished" in event
    assert b"ann@example.com" not in event


def test_without_a_dsn_nothing_is_sent():
    code = "import django, sentry_sdk; django.setup(); print(sentry_sdk.get_client().is_active())"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=PROJECT_ROOT,
        env=worker_environment(SENTRY_DSN=""),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.strip() == "False"
