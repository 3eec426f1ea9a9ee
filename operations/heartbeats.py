"""Heartbeats of the worker and the scheduler, recorded in the database.

The worker beats from its own timer (the event loop that also consumes tasks), so a worker
whose loop is stuck stops beating. The scheduler beats from its tick (``HeartbeatScheduler``,
``CELERY_BEAT_SCHEDULER``), which runs at least every ``CELERY_BEAT_MAX_LOOP_INTERVAL`` seconds.
A failed write is logged and skipped: a heartbeat must never stop the process it reports on.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

from celery.beat import PersistentScheduler
from celery.signals import worker_ready
from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

from operations.models import ProcessKind
from operations.services import heartbeat_record

logger = logging.getLogger(__name__)


def _beat(*, kind: ProcessKind, name: str, started_at: Any) -> None:
    try:
        close_old_connections()  # a connection broken by a database restart is replaced
        heartbeat_record(kind=kind, name=name, started_at=started_at)
    except Exception:
        logger.warning("heartbeat of %s %s not recorded", kind.value, name, exc_info=True)


@worker_ready.connect
def _worker_heartbeat_start(sender: Any = None, **_: Any) -> None:
    """Beat now and every ``OPERATIONS_HEARTBEAT_SECONDS`` from the worker's timer."""
    name = str(getattr(sender, "hostname", None) or f"celery@{socket.gethostname()}")
    started_at = timezone.now()
    _beat(kind=ProcessKind.WORKER, name=name, started_at=started_at)
    sender.timer.call_repeatedly(
        settings.OPERATIONS_HEARTBEAT_SECONDS,
        _beat,
        kwargs={"kind": ProcessKind.WORKER, "name": name, "started_at": started_at},
    )


class HeartbeatScheduler(PersistentScheduler):
    """Celery beat's default scheduler, beating at most every ``OPERATIONS_HEARTBEAT_SECONDS``."""

    def setup_schedule(self) -> None:
        super().setup_schedule()
        self._heartbeat_name = f"scheduler@{socket.gethostname()}"
        self._heartbeat_started_at = timezone.now()
        self._heartbeat_last = 0.0

    def tick(self, *args: Any, **kwargs: Any) -> float:
        now = self.app.now().timestamp()
        if now - self._heartbeat_last >= settings.OPERATIONS_HEARTBEAT_SECONDS / 2:
            self._heartbeat_last = now
            _beat(
                kind=ProcessKind.SCHEDULER,
                name=self._heartbeat_name,
                started_at=self._heartbeat_started_at,
            )
        return float(super().tick(*args, **kwargs))
