"""The application's Prometheus metrics, kept where every process can add to them.

``metric_count(name, amount, **labels)`` and ``metric_observe(name, value, **labels)`` are the
one-line calls other apps make. The figures are kept in one Redis hash (``REDIS_URL``), so that
the web processes and every worker on every machine add to the same counters, and ``/metrics``
on any web process shows them all. Writes fail open: when Redis cannot be reached the figure is
dropped, a warning logged, and Redis left alone for ``OUTAGE_PAUSE_SECONDS``, so an outage costs
a request at most one short timeout. Without ``REDIS_URL`` (the demo) each process keeps its own
figures in memory, and ``/metrics`` shows the web process's only.

Within a web request the writes are held back and sent with the request's own figure in one
Redis round trip (``request_metrics_middleware``).
"""

from __future__ import annotations

import contextvars
import json
import logging
import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from django.conf import settings

logger = logging.getLogger(__name__)

PREFIX = "backinstock_"
REDIS_KEY = "operations:metrics"
REDIS_TIMEOUT_SECONDS = 0.1
OUTAGE_PAUSE_SECONDS = 10.0

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, math.inf)
SYNC_BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, math.inf)


@dataclass(frozen=True)
class MetricSpec:
    """One metric: ``kind`` counter (``<name>_total``) or histogram, its help and label names."""

    name: str
    kind: Literal["counter", "histogram"]
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = field(default=())


METRICS: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in (
        MetricSpec(
            "http_request_duration_seconds",
            "histogram",
            "Web requests by method, URL route (its pattern, never the path) and status.",
            ("method", "route", "status"),
            LATENCY_BUCKETS,
        ),
        MetricSpec(
            "subscriptions_accepted",
            "counter",
            "Back-in-stock subscriptions accepted, new or repeated.",
            ("outcome",),
        ),
        MetricSpec(
            "subscription_pushes",
            "counter",
            "Pushes of a subscription to Klaviyo by outcome (subscribed, retry, failed).",
            ("outcome",),
        ),
        MetricSpec(
            "klaviyo_requests",
            "counter",
            "Calls to Klaviyo by rate class and HTTP status (timeout, connection-error).",
            ("rate_class", "status"),
        ),
        MetricSpec(
            "klaviyo_rate_limiter_wait_seconds",
            "counter",
            "Seconds spent waiting on the shared outbound rate limiter, by rate class.",
            ("rate_class",),
        ),
        MetricSpec(
            "catalog_sync_duration_seconds",
            "histogram",
            "Catalog syncs by kind (full or not) and final state.",
            ("full", "state"),
            SYNC_BUCKETS,
        ),
        MetricSpec(
            "catalog_sync_failed_items",
            "counter",
            "Catalog items Klaviyo refused during catalog syncs.",
        ),
        MetricSpec(
            "stock_figures_pushed",
            "counter",
            "Back-in-stock variant stock figures Klaviyo accepted.",
        ),
        MetricSpec(
            "restocks",
            "counter",
            "Back-in-stock variants whose figure rose from 0 with shoppers waiting.",
        ),
    )
}


# --- storage --------------------------------------------------------------------------------

Operation = tuple[str, str, float]  # ("count" | "add", field, amount)


def _field(name: str, part: str, labels: dict[str, str], le: str = "") -> str:
    return json.dumps([name, part, sorted(labels.items()), le], separators=(",", ":"))


class _MemoryStore:
    """One process's figures, for the demo (no Redis)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, float] = {}

    def apply(self, operations: list[Operation]) -> None:
        with self._lock:
            for _, key, amount in operations:
                self._values[key] = self._values.get(key, 0.0) + amount

    def read(self) -> dict[str, float]:
        with self._lock:
            return dict(self._values)

    def clear(self) -> None:
        with self._lock:
            self._values.clear()


class _RedisStore:
    def __init__(self, url: str) -> None:
        import redis

        self._client = redis.Redis.from_url(
            url, socket_connect_timeout=REDIS_TIMEOUT_SECONDS, socket_timeout=REDIS_TIMEOUT_SECONDS
        )
        self._paused_until = 0.0

    def apply(self, operations: list[Operation]) -> None:
        if time.monotonic() < self._paused_until:
            return
        try:
            pipeline = self._client.pipeline(transaction=False)
            for kind, key, amount in operations:
                if kind == "count":
                    pipeline.hincrby(REDIS_KEY, key, int(amount))
                else:
                    pipeline.hincrbyfloat(REDIS_KEY, key, amount)
            pipeline.execute()
        except Exception:  # fail open: a figure lost is better than a request or task failed
            self._paused_until = time.monotonic() + OUTAGE_PAUSE_SECONDS
            logger.warning("metrics: Redis unreachable, figures dropped for a while", exc_info=True)

    def read(self) -> dict[str, float]:
        raw: dict[bytes, bytes] = self._client.hgetall(REDIS_KEY)  # type: ignore[assignment]
        return {key.decode(): float(value) for key, value in raw.items()}

    def clear(self) -> None:
        self._client.delete(REDIS_KEY)


_stores: dict[str, _MemoryStore | _RedisStore] = {}
_stores_lock = threading.Lock()


def metrics_store() -> _MemoryStore | _RedisStore:
    """The store for the current ``REDIS_URL`` (one per URL and process)."""
    url = settings.REDIS_URL
    with _stores_lock:
        if url not in _stores:
            _stores[url] = _RedisStore(url) if url else _MemoryStore()
        return _stores[url]


# Within a web request, writes are collected here and sent together at its end.
_metrics_buffer: contextvars.ContextVar[list[Operation] | None] = contextvars.ContextVar(
    "metrics_metrics_buffer", default=None
)


def _send(operations: list[Operation]) -> None:
    buffer = _metrics_buffer.get()
    if buffer is not None:
        buffer.extend(operations)
    else:
        metrics_store().apply(operations)


def _labels(spec: MetricSpec, labels: dict[str, Any]) -> dict[str, str]:
    if set(labels) != set(spec.labels):
        raise ValueError(f"metric {spec.name} takes labels {spec.labels}, not {tuple(labels)}")
    return {
        key: str(value).lower() if isinstance(value, bool) else str(value)
        for key, value in labels.items()
    }


# --- the API other apps call ----------------------------------------------------------------


def metric_count(name: str, amount: float = 1, **labels: Any) -> None:
    """Add ``amount`` (default 1; 0 does nothing) to counter ``name`` (see ``METRICS``).

    Fails open: never raises for an unreachable Redis. Raises ValueError for an unknown metric or
    wrong label names, which is a programming error.
    """
    spec = METRICS[name]
    if spec.kind != "counter":
        raise ValueError(f"metric {name} is a {spec.kind}")
    if amount:
        kind = "count" if float(amount).is_integer() else "add"
        _send([(kind, _field(name, "total", _labels(spec, labels)), float(amount))])


def metric_observe(name: str, value: float, **labels: Any) -> None:
    """Record one observation ``value`` (seconds) of histogram ``name``. Fails open."""
    spec = METRICS[name]
    if spec.kind != "histogram":
        raise ValueError(f"metric {name} is a {spec.kind}")
    clean = _labels(spec, labels)
    le = next(bound for bound in spec.buckets if value <= bound)
    _send(
        [
            ("count", _field(name, "bucket", clean, repr(le)), 1.0),
            ("add", _field(name, "sum", clean), float(value)),
        ]
    )


@contextmanager
def metrics_buffered() -> Iterator[None]:
    """Hold the metric writes of a block (a web request, a sending thread's batch) and send them
    in one round trip at its end. Per thread: a thread started inside the block writes at once."""
    token = _metrics_buffer.set([])
    try:
        yield
    finally:
        operations = _metrics_buffer.get() or []
        _metrics_buffer.reset(token)
        if operations:
            metrics_store().apply(operations)


# --- reading, for /metrics ------------------------------------------------------------------


@dataclass
class StoredFigures:
    """The stored figures grouped by metric: ``{name: {labels: {part/le: value}}}``."""

    values: dict[str, dict[tuple[tuple[str, str], ...], dict[str, float]]]

    @classmethod
    def read(cls) -> StoredFigures:
        grouped: dict[str, dict[tuple[tuple[str, str], ...], dict[str, float]]] = {}
        for key, value in metrics_store().read().items():
            try:
                name, part, labels, le = json.loads(key)
            except (ValueError, TypeError):
                continue
            if name not in METRICS:
                continue  # written by a newer or older release
            label_key = tuple((str(k), str(v)) for k, v in labels)
            grouped.setdefault(name, {}).setdefault(label_key, {})[f"{part}:{le}"] = value
        return cls(grouped)

    def samples(self, name: str) -> Iterator[tuple[dict[str, str], dict[str, float]]]:
        for label_key, parts in sorted(self.values.get(name, {}).items()):
            yield dict(label_key), parts


def metrics_reset() -> None:
    """Forget every stored figure (tests; an operator starting afresh)."""
    metrics_store().clear()
