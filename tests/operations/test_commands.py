"""``manage.py health``: the exit status a supervisor acts on."""

import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from operations.models import Heartbeat, ProcessKind

pytestmark = pytest.mark.django_db


def health(*args: str, capsys) -> tuple[int, dict]:
    try:
        call_command("health", *args)
        code = 0
    except CommandError as exc:
        code = exc.returncode
    return code, json.loads(capsys.readouterr().out)


def beat(kind: ProcessKind, name: str, seconds_ago: float) -> None:
    at = timezone.now() - timedelta(seconds=seconds_ago)
    Heartbeat.objects.create(kind=kind, name=name, beat_at=at, started_at=at)


def test_a_worker_never_seen_is_unhealthy(capsys):
    code, report = health("worker", capsys=capsys)
    assert code == 1
    assert report == {"process": "worker", "healthy": False, "heartbeatAgeSeconds": None}


def test_a_worker_with_a_recent_heartbeat_is_healthy(capsys):
    beat(ProcessKind.WORKER, "celery@a", 3)
    code, report = health("worker", capsys=capsys)
    assert code == 0
    assert report["healthy"] is True


def test_a_scheduler_whose_heartbeat_is_older_than_the_maximum_age_is_unhealthy(capsys):
    beat(ProcessKind.SCHEDULER, "scheduler@a", 90)
    assert health("scheduler", capsys=capsys)[0] == 1
    assert health("scheduler", "--max-age", "120", capsys=capsys)[0] == 0


def test_one_named_worker_is_checked_apart_from_the_others(capsys):
    beat(ProcessKind.WORKER, "celery@a", 3)
    beat(ProcessKind.WORKER, "celery@b", 300)
    assert health("worker", "--name", "celery@a", capsys=capsys)[0] == 0
    assert health("worker", "--name", "celery@b", capsys=capsys)[0] == 1


def test_ready_runs_the_readiness_checks_here(capsys):
    code, report = health("ready", capsys=capsys)
    assert code == 0
    assert report["checks"]["database"] == "ok"


def test_web_is_unhealthy_when_nothing_answers(capsys):
    from tests.redis_server import free_port

    code, report = health("web", "--url", f"http://127.0.0.1:{free_port()}/healthz", capsys=capsys)
    assert code == 1
    assert report["error"] == "ConnectionError"


def test_web_is_healthy_when_its_healthz_answers(capsys, live_server):
    code, report = health("web", "--url", f"{live_server.url}/healthz", capsys=capsys)
    assert (code, report["status"]) == (0, 200)
