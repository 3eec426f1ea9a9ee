from datetime import timedelta

import pytest
from django.utils import timezone

from operations.models import Heartbeat, ProcessKind
from operations.selectors import heartbeat_ages, heartbeats_list
from operations.services import heartbeat_record

pytestmark = pytest.mark.django_db


def test_heartbeat_ages_are_none_for_a_kind_never_seen():
    assert heartbeat_ages() == {"worker": None, "scheduler": None}


def test_heartbeat_ages_give_the_youngest_heartbeat_of_each_kind():
    now = timezone.now()
    Heartbeat.objects.create(
        kind=ProcessKind.WORKER,
        name="celery@a",
        beat_at=now - timedelta(seconds=100),
        started_at=now,
    )
    Heartbeat.objects.create(
        kind=ProcessKind.WORKER, name="celery@b", beat_at=now - timedelta(seconds=5), started_at=now
    )
    ages = heartbeat_ages()
    assert 4 < ages["worker"] < 30
    assert ages["scheduler"] is None
    assert 99 < heartbeat_ages(name="celery@a")["worker"] < 130


def test_a_heartbeat_updates_its_process_row_in_place():
    started = timezone.now()
    heartbeat_record(kind=ProcessKind.SCHEDULER, name="scheduler@a", started_at=started)
    heartbeat_record(kind=ProcessKind.SCHEDULER, name="scheduler@a", started_at=started)
    [only] = heartbeats_list()
    assert only.name == "scheduler@a"
    assert only.age_seconds < 5


def test_a_new_process_drops_rows_of_processes_gone_for_a_week():
    old = timezone.now() - timedelta(days=8)
    Heartbeat.objects.create(
        kind=ProcessKind.WORKER, name="celery@gone", beat_at=old, started_at=old
    )
    heartbeat_record(kind=ProcessKind.WORKER, name="celery@new", started_at=timezone.now())
    assert [h.name for h in heartbeats_list()] == ["celery@new"]
