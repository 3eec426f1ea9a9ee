"""Reads of the operations app: heartbeat ages and the readiness checks (CONTRACT §9)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from operations.models import Heartbeat, ProcessKind

logger = logging.getLogger(__name__)

CHECK_OK = "ok"
CHECK_FAILING = "failing"
# REDIS_URL unset (the demo): the local-memory cache is used and there is nothing to reach.
CHECK_NOT_CONFIGURED = "not configured"
BROKER_TIMEOUT_SECONDS = 2


@dataclass(frozen=True)
class HeartbeatAge:
    kind: str
    name: str
    age_seconds: float
    started_at: datetime


def heartbeats_list() -> list[HeartbeatAge]:
    """Every process that has sent a heartbeat, youngest first, with its age in seconds."""
    now = timezone.now()
    return [
        HeartbeatAge(
            kind=row.kind,
            name=row.name,
            age_seconds=max((now - row.beat_at).total_seconds(), 0.0),
            started_at=row.started_at,
        )
        for row in Heartbeat.objects.order_by("-beat_at")
    ]


def heartbeat_ages(*, name: str | None = None) -> dict[str, float | None]:
    """``{"worker": seconds, "scheduler": seconds}``: the age of the youngest heartbeat of each
    kind of process (of the process ``name`` only, when given), None when none was ever seen.

    A worker and a scheduler beat every ``OPERATIONS_HEARTBEAT_SECONDS`` (15 s by default); an
    age well above that (``OPERATIONS_HEARTBEAT_MAX_AGE_SECONDS``, 60 s) means the process is
    gone or stuck. Read by ``manage.py health``, the metrics and the admin's health panel.
    """
    ages: dict[str, float | None] = {kind.value: None for kind in ProcessKind}
    for heartbeat in heartbeats_list():
        if name is not None and heartbeat.name != name:
            continue
        if ages[heartbeat.kind] is None:
            ages[heartbeat.kind] = heartbeat.age_seconds
    return ages


def _database_check() -> str:
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute("SELECT 1")
    return CHECK_OK


def _redis_check() -> str:
    if not settings.REDIS_URL:
        return CHECK_NOT_CONFIGURED
    import redis

    client = redis.Redis.from_url(
        settings.REDIS_URL, socket_connect_timeout=0.5, socket_timeout=0.5
    )
    try:
        client.ping()
    finally:
        client.close()
    return CHECK_OK


def _broker_check() -> str:
    from config.celery_app import app

    with app.connection_for_write() as connection:
        connection.ensure_connection(max_retries=1, timeout=BROKER_TIMEOUT_SECONDS)
    return CHECK_OK


def _migrations_check() -> str:
    connection = connections[DEFAULT_DB_ALIAS]
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    return CHECK_OK if not plan else f"{CHECK_FAILING}: {len(plan)} not applied"


READINESS_CHECKS = {
    "database": _database_check,
    "redis": _redis_check,
    "broker": _broker_check,
    "migrations": _migrations_check,
}


def readiness_checks() -> dict[str, str]:
    """``{"database": "ok", "redis": "ok", "broker": "ok", "migrations": "ok"}``.

    Each value is ``ok``, ``not configured`` (Redis in the demo) or ``failing: <what>``, where
    ``<what>`` names the kind of error (never a URL or a password). Each check is bounded by its
    client's timeouts (about 2 s at most for the broker).
    """
    results: dict[str, str] = {}
    for name, check in READINESS_CHECKS.items():
        try:
            results[name] = check()
        except Exception as exc:  # any failure is the answer, not an error of the check
            logger.warning("readiness: %s is failing (%s)", name, type(exc).__name__)
            results[name] = f"{CHECK_FAILING}: {type(exc).__name__}"
    return results


def readiness_ok(checks: dict[str, str]) -> bool:
    return all(not value.startswith(CHECK_FAILING) for value in checks.values())
