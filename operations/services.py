"""Writes of the operations app: heartbeats."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone

from operations.models import Heartbeat, ProcessKind

# Rows of processes gone this long are dropped when a process starts (renamed hosts, scaled down).
HEARTBEAT_KEEP_DAYS = 7


def heartbeat_record(*, kind: ProcessKind, name: str, started_at: datetime) -> None:
    """Note that process ``name`` of ``kind`` is alive now (one upsert on (kind, name)).

    Called every ``OPERATIONS_HEARTBEAT_SECONDS`` by the worker's timer and the scheduler's tick
    (``operations.heartbeats``). Database errors propagate; the callers log and carry on.
    """
    now = timezone.now()
    _, created = Heartbeat.objects.update_or_create(
        kind=kind, name=name, defaults={"beat_at": now, "started_at": started_at}
    )
    if created:
        Heartbeat.objects.filter(beat_at__lt=now - timedelta(days=HEARTBEAT_KEEP_DAYS)).delete()
