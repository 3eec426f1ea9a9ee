"""Reads of the operations app: heartbeat ages, readiness checks and metrics (CONTRACT §9)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.utils import floatToGoString

from operations.metrics import METRICS, PREFIX, StoredFigures
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


class BrokerCheckTimeout(Exception):
    """The broker did not answer within the check's time (a broker that accepts connections and
    never answers: ``ensure_connection``'s timeout bounds connecting, not the reply)."""


_broker_check_running = threading.Lock()


def _broker_connect() -> None:
    from config.celery_app import app

    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=BROKER_TIMEOUT_SECONDS)
    finally:
        _broker_check_running.release()


def _broker_check() -> str:
    """Connect to the broker from a thread of its own and wait at most
    ``BROKER_TIMEOUT_SECONDS`` + 1 s, so that a hung broker costs a probe seconds, not the web
    server's threads. While an earlier check is still hanging, no other one is started: the
    broker is reported failing at once."""
    if not _broker_check_running.acquire(blocking=False):
        raise BrokerCheckTimeout("an earlier check is still waiting for the broker")
    outcome: dict[str, BaseException | None] = {}

    def connect() -> None:
        try:
            _broker_connect()
            outcome["error"] = None
        except BaseException as exc:  # reported to the waiting request
            outcome["error"] = exc

    thread = threading.Thread(target=connect, name="readiness-broker", daemon=True)
    thread.start()
    thread.join(BROKER_TIMEOUT_SECONDS + 1)
    if "error" not in outcome:
        raise BrokerCheckTimeout(f"no answer within {BROKER_TIMEOUT_SECONDS + 1:g} s")
    if outcome["error"] is not None:
        raise outcome["error"]
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


# --- metrics ----------------------------------------------------------------------------------


class _StoredMetricsCollector:
    """The counters and histograms kept in Redis by every process (``operations.metrics``)."""

    def collect(self) -> Iterator[Metric]:
        figures = StoredFigures.read()
        for spec in METRICS.values():
            full_name = f"{PREFIX}{spec.name}"
            if spec.kind == "counter":
                counter = CounterMetricFamily(full_name, spec.help, labels=spec.labels)
                for labels, parts in figures.samples(spec.name):
                    counter.add_metric([labels[k] for k in spec.labels], parts.get("total:", 0.0))
                yield counter
                continue
            histogram = HistogramMetricFamily(full_name, spec.help, labels=spec.labels)
            for labels, parts in figures.samples(spec.name):
                cumulative, buckets = 0.0, []
                for bound in spec.buckets:
                    cumulative += parts.get(f"bucket:{bound!r}", 0.0)
                    buckets.append((floatToGoString(bound), cumulative))
                histogram.add_metric(
                    [labels[k] for k in spec.labels], buckets, parts.get("sum:", 0.0)
                )
            yield histogram


class _DatabaseGaugesCollector:
    """Figures read from the database at scrape time: the outbox and the processes' heartbeats."""

    def collect(self) -> Iterator[Metric]:
        from backinstock.models import Subscription, SubscriptionStatus

        by_status = GaugeMetricFamily(
            f"{PREFIX}subscriptions", "Subscriptions by push status.", labels=["status"]
        )
        counts = dict(Subscription.objects.values_list("status").annotate(n=Count("id")).order_by())
        for status in SubscriptionStatus:
            by_status.add_metric([status.value], counts.get(status.value, 0))
        yield by_status
        oldest = (
            Subscription.objects.filter(status=SubscriptionStatus.PENDING)
            .aggregate(oldest=Min("created_at"))
            .get("oldest")
        )
        yield GaugeMetricFamily(
            f"{PREFIX}subscriptions_pending_oldest_age_seconds",
            "Age of the oldest subscription not yet in Klaviyo (0 when none is pending).",
            value=(timezone.now() - oldest).total_seconds() if oldest else 0.0,
        )
        ages = GaugeMetricFamily(
            f"{PREFIX}heartbeat_age_seconds",
            "Seconds since the youngest heartbeat of each kind of process (absent: never seen).",
            labels=["process"],
        )
        for kind, age in heartbeat_ages().items():
            if age is not None:
                ages.add_metric([kind], age)
        yield ages


def metrics_exposition() -> bytes:
    """The Prometheus text exposition of every metric (README "Metrics" lists them).

    The stored figures come from Redis, the gauges from the database; a failing source is left
    out (and logged) rather than failing the scrape, and ``backinstock_metrics_source_up`` says
    which.
    """
    registry = CollectorRegistry(auto_describe=False)
    up = GaugeMetricFamily(
        f"{PREFIX}metrics_source_up", "1 when the source was read.", labels=["source"]
    )
    for source, collector in (
        ("redis", _StoredMetricsCollector()),
        ("database", _DatabaseGaugesCollector()),
    ):
        try:
            families = list(collector.collect())
        except Exception:
            logger.warning("metrics: %s could not be read", source, exc_info=True)
            up.add_metric([source], 0)
            continue
        up.add_metric([source], 1)
        registry.register(_Fixed(families))
    registry.register(_Fixed([up]))
    return generate_latest(registry)


class _Fixed:
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)
