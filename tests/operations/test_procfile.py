"""The Procfile, as `honcho start` runs it, against the Klaviyo sandbox: one subscription
posted to its web process arrives in Klaviyo through its worker."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from django.core.management import call_command
from django.db import connection

from operations.selectors import heartbeat_ages
from tests.redis_server import free_port
from tests.web import production_environment
from tests.worker import (
    PROJECT_ROOT,
    broker_purge,
    process_group_stop,
    wait_until,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

SUBSCRIPTION = {
    "item": "12366-23400",
    "shipTo": {"country": "SE"},
    "email": "procfile@example.com",
    "language": "sv",
}


def test_the_procfile_runs_web_worker_and_beat_that_deliver_a_subscription(
    sandbox, demo_catalog, tmp_path
):
    call_command("klaviyo", "sync-catalog", "--full", "--wait", verbosity=0)
    call_command("klaviyo", "configure", "--back-in-stock", "on")
    broker_purge()
    port = free_port()
    env = production_environment(
        WEB_CONCURRENCY="1",
        OPERATIONS_HEARTBEAT_SECONDS="1",
        # The Procfile's commands are the virtualenv's, as after `source .venv/bin/activate`.
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    )
    empty_env_file = tmp_path / "empty.env"
    empty_env_file.write_text("")
    log_path = tmp_path / "honcho.log"
    with log_path.open("wb") as log:
        honcho = subprocess.Popen(
            [sys.executable, "-m", "honcho", "start", "-e", str(empty_env_file), "-p", str(port)],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            url = f"http://127.0.0.1:{port}"

            def web_ready() -> bool:
                try:
                    return requests.get(f"{url}/readyz", timeout=2).status_code == 200
                except requests.RequestException:
                    return False

            wait_until(web_ready, timeout=60, message="the web process did not become ready")
            response = requests.post(
                f"{url}/api/checkout-api/back-in-stock-subscription", json=SUBSCRIPTION, timeout=10
            )
            assert response.status_code == 201
            wait_until(
                lambda: sandbox.snapshot()["back_in_stock_subscriptions"],
                timeout=60,
                message="the subscription did not reach the sandbox",
            )

            def both_beating() -> bool:
                connection.close()
                return None not in heartbeat_ages().values()

            wait_until(both_beating, timeout=30, message="worker and beat sent no heartbeat")
        finally:
            process_group_stop(honcho)
    [event] = sandbox.snapshot()["back_in_stock_subscriptions"]
    assert event["email"] == "procfile@example.com"
    assert event["variant_id"] == "$custom:::$default:::12366_SE_00_23400"
