"""A normal stop of a worker (TERM to its main process, as systemd's KillMode=mixed and Celery's
docs do it) while it pushes a subscription: the push finishes and nothing is logged as an error."""

import os
import signal

import pytest
from django.db import connection

from backinstock.models import Subscription
from tests.operations.conftest import subscribe_in_sweden
from tests.worker import broker_purge, running_worker, wait_until

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.usefixtures("demo_catalog", "back_in_stock_on"),
]


def test_a_worker_stopped_mid_push_finishes_it_and_logs_no_error(sandbox, tmp_path):
    sandbox.add_fault("slow", delay=3, count=1, path_prefix="/api/back-in-stock-subscriptions")
    broker_purge()
    log_path = tmp_path / "worker.log"
    with running_worker(log_path=log_path, beat=True) as worker:
        subscription_id = subscribe_in_sweden("ann@example.com")
        wait_until(
            lambda: sandbox.faults.active() == [], timeout=30, message="the push never started"
        )
        os.kill(worker.pid, signal.SIGTERM)
        worker.wait(timeout=60)
    connection.close()
    assert Subscription.objects.get(id=subscription_id).status == "subscribed"
    log = log_path.read_text()
    assert "Warm shutdown" in log
    assert " ERROR " not in log and "WorkerLostError" not in log
