"""A real ``celery -A config worker --beat`` records the heartbeats ``manage.py health`` reads."""

import pytest
from django.core.management import call_command
from django.db import connection

from operations.selectors import heartbeat_ages
from tests.worker import broker_purge, running_worker, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def both_beating() -> bool:
    connection.close()  # see the worker's commits
    ages = heartbeat_ages()
    return ages["worker"] is not None and ages["scheduler"] is not None


def test_a_running_worker_and_scheduler_keep_their_heartbeats_young(tmp_path):
    broker_purge()
    with running_worker(
        log_path=tmp_path / "worker.log", beat=True, OPERATIONS_HEARTBEAT_SECONDS="1"
    ):
        wait_until(both_beating, timeout=60, message="no heartbeat from the worker and beat")
        first = heartbeat_ages()
        wait_until(lambda: both_beating() and heartbeat_ages()["worker"] < 2, timeout=10)
        call_command("health", "worker", "--max-age", "5")
        call_command("health", "scheduler", "--max-age", "5")
    assert first["worker"] is not None
    assert "ERROR" not in (tmp_path / "worker.log").read_text()
