"""The application's Prometheus metrics, kept where every process can add to them.

``metric_count(name, amount, **labels)`` and ``metric_observe(name, value, **labels)`` are the
one-line calls other apps make. The figures are kept in one Redis hash (``REDIS_URL``), so that
the web processes and every worker on every machine add to the same counters, and ``/metrics``
on any web process shows them all. Writes fail open: when Redis cannot be reached a warning is
logged and Redis left alone for ``OUTAGE_PAUSE_SECONDS``; no caller ever waits for it. Without
``REDIS_URL`` (the demo) each process keeps its own figures in memory, and ``/metrics`` shows
the web process's only.

Writes are not sent one by one: each process sums what it records and a thread of its own sends
the sums every ``METRICS_FLUSH_SECONDS`` (1 s by default) in one Redis round trip, so that a web
request or a push pays nothing for its figures (bench/README.md, "Load": a round trip per request
was a tenth of the subscribe endpoint's time). A scrape therefore shows a figure up to that long
after it was recorded; a process that stops sends what it holds on its way out (``atexit``), and
one that is killed loses at most that second, as does one that exits while Redis cannot be
reached (it tries once even in the pause after a failure). While Redis is unreachable or does
not answer the sums are kept and sent once it is back, exactly once: each send is a batch with
an id, applied by a script only if Redis has not applied that id before (``_RedisStore.apply``).
With the setting at 0 every write is sent at once (the tests).
"""

from __future__ import annotations

import atexit
import functools
import json
import logging
import math
import os
import threading
import time
import uuid
from collections.abc import Iterator
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

Operation = tuple[str, float]  # (field, amount): add the amount to the stored field


Labels = tuple[tuple[str, str], ...]  # (name, value) pairs, sorted by name


@functools.lru_cache(maxsize=4096)
def _field(name: str, part: str, labels: Labels, le: str = "") -> str:
    """The stored field of one series part: a JSON array, built once per series and process
    (label values are bounded by design, so the cache holds every series a process writes)."""
    return json.dumps([name, part, labels, le], separators=(",", ":"))


class _MemoryStore:
    """One process's figures, for the demo (no Redis)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, float] = {}

    def apply(
        self, operations: list[Operation], *, batch_id: str, even_if_paused: bool = False
    ) -> bool:
        """Add the amounts (``batch_id`` and ``even_if_paused`` are for the Redis store: one
        process's memory is never sent a batch twice, and never paused)."""
        with self._lock:
            for key, amount in operations:
                self._values[key] = self._values.get(key, 0.0) + amount
        return True

    def read(self) -> dict[str, float]:
        with self._lock:
            return dict(self._values)

    def clear(self) -> None:
        with self._lock:
            self._values.clear()


# How long Redis remembers a batch it applied, so that the same batch sent again is not added
# twice. A send that got no answer may still be applied later: a Redis stopped (SIGSTOP) or
# stalled reads the request waiting in its socket once it runs again, and the sender, having
# timed out, sends the batch again once Redis answers (after ``OUTAGE_PAUSE_SECONDS``). Ten
# minutes covers both orders with room; one small key per batch, at most one batch a second per
# process.
BATCH_MARK_SECONDS = 600
BATCH_MARK_PREFIX = f"{REDIS_KEY}:applied:"

# KEYS: the figures' hash, the batch's mark. ARGV: the mark's lifetime in seconds, then each
# operation's field and amount. Answers 1 applied, 0 applied before. Every amount is added with
# HINCRBYFLOAT, whole or not: a field a whole amount was added to with HINCRBY could not take a
# fraction later, nor the reverse, and a script that fails halfway keeps what it did before (a
# float counter's field, such as the rate limiter's waits, gets both). Redis keeps the sum as a
# long double, exact for whole counts far beyond any counter here.
_APPLY_ONCE_SCRIPT = """
if not redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[1]) then
    return 0
end
for i = 2, #ARGV, 2 do
    redis.call('HINCRBYFLOAT', KEYS[1], ARGV[i], ARGV[i + 1])
end
return 1
"""


class _RedisStore:
    def __init__(self, url: str) -> None:
        import redis

        self._client = redis.Redis.from_url(
            url, socket_connect_timeout=REDIS_TIMEOUT_SECONDS, socket_timeout=REDIS_TIMEOUT_SECONDS
        )
        self._apply_once = self._client.register_script(_APPLY_ONCE_SCRIPT)
        self._paused_until = 0.0

    def apply(
        self, operations: list[Operation], *, batch_id: str, even_if_paused: bool = False
    ) -> bool:
        """Apply the batch ``batch_id`` in one round trip, unless Redis has applied it before
        (``BATCH_MARK_SECONDS``); True once Redis has it. False when it was not answered (paused
        after a failure, no connection, no answer), so that the caller sends the same batch again
        later: a batch that got no answer may have been applied all the same (a stopped Redis
        runs it when it resumes), and its id keeps it from counting twice. ``even_if_paused``: try
        during the pause after a failure too (a process's last send)."""
        if time.monotonic() < self._paused_until and not even_if_paused:
            return False
        arguments: list[str | int] = [BATCH_MARK_SECONDS]
        for key, amount in operations:
            arguments += [key, repr(float(amount))]
        try:
            self._apply_once(keys=[REDIS_KEY, BATCH_MARK_PREFIX + batch_id], args=arguments)
        except Exception:  # fail open: a figure late is better than a request or task failed
            self._paused_until = time.monotonic() + OUTAGE_PAUSE_SECONDS
            logger.warning("metrics: Redis unreachable, figures held", exc_info=True)
            return False
        return True

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


class _Outbox:
    """What this process recorded and has not sent yet, summed per field; a daemon thread sends
    it every ``METRICS_FLUSH_SECONDS``. A batch Redis did not answer is kept as it is, id and all,
    and sent again before anything recorded since; meanwhile new figures are summed beside it.
    After a fork the child drops what it inherited (the parent sends that) and starts a thread of
    its own on its first write."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._sums: dict[str, float] = {}
        self._unanswered: tuple[str, list[Operation]] | None = None  # (batch id, operations)
        self._thread: threading.Thread | None = None

    def add(self, operations: list[Operation], *, every: float) -> None:
        with self._lock:
            if self._pid != os.getpid():
                self._pid, self._sums, self._unanswered, self._thread = os.getpid(), {}, None, None
            for key, amount in operations:
                self._sums[key] = self._sums.get(key, 0.0) + amount
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._send_every, args=(every,), name="metrics-outbox", daemon=True
                )
                self._thread.start()

    def send(self) -> None:
        """Send what is held now: a batch left unanswered before, then the sums recorded since,
        one round trip each. A batch Redis does not answer (down, hung, or paused after a
        failure) is kept for the next send, so an outage delays figures rather than losing or
        doubling them; fails open like every write."""
        for _ in range(2):  # at most the unanswered batch and the sums: never chases new figures
            with self._lock:
                if self._pid != os.getpid():
                    return
                if self._unanswered is None:
                    if not self._sums:
                        return
                    operations = list(self._sums.items())
                    self._unanswered, self._sums = (uuid.uuid4().hex, operations), {}
                batch = self._unanswered
            if not metrics_store().apply(batch[1], batch_id=batch[0]):
                return
            with self._lock:
                if self._unanswered is batch:
                    self._unanswered = None

    def send_last(self) -> None:
        """The process is exiting: try everything it holds once, the batch left unanswered and
        the sums since, even during the pause after a failure, for a Redis that answers again
        within that pause (a worker recycled or a deploy just after a Redis stall). A Redis
        still stopped or gone never gets them: the send needs a new connection, whose handshake
        (redis-py's ``CLIENT SETINFO``) waits for an answer first. They are lost with the
        process."""
        with self._lock:
            if self._pid != os.getpid():
                return
            batches = [self._unanswered] if self._unanswered else []
            if self._sums:
                batches.append((uuid.uuid4().hex, list(self._sums.items())))
            self._unanswered, self._sums = None, {}
        for batch_id, operations in batches:
            metrics_store().apply(operations, batch_id=batch_id, even_if_paused=True)

    def _send_every(self, seconds: float) -> None:
        while True:
            time.sleep(seconds)
            try:
                self.send()
            except Exception:  # never let the thread die: the next round sends again
                logger.warning("metrics: sending failed", exc_info=True)


_outbox = _Outbox()
atexit.register(_outbox.send_last)


def _send(operations: list[Operation]) -> None:
    every = float(settings.METRICS_FLUSH_SECONDS)
    if every > 0 and settings.REDIS_URL:
        _outbox.add(operations, every=every)
    else:  # at once: the tests, and the demo's in-process figures
        metrics_store().apply(operations, batch_id=uuid.uuid4().hex)


def metrics_send_now() -> None:
    """Send the figures this process holds (before a scrape, or a process's planned exit)."""
    _outbox.send()


def _labels(spec: MetricSpec, labels: dict[str, Any]) -> Labels:
    if set(labels) != set(spec.labels):
        raise ValueError(f"metric {spec.name} takes labels {spec.labels}, not {tuple(labels)}")
    return tuple(
        sorted(
            (key, str(value).lower() if isinstance(value, bool) else str(value))
            for key, value in labels.items()
        )
    )


# --- the API other apps call ----------------------------------------------------------------


def metric_count(name: str, amount: float = 1, **labels: Any) -> None:
    """Add ``amount`` (default 1; 0 does nothing) to counter ``name`` (see ``METRICS``).

    Fails open: never raises for an unreachable Redis. Raises ValueError for an unknown metric,
    wrong label names, or an amount that is not a finite float or is negative (a Prometheus
    counter only goes up; a scrape reads a decrease as the process restarting), which are
    programming errors.
    """
    spec = METRICS[name]
    if spec.kind != "counter":
        raise ValueError(f"metric {name} is a {spec.kind}")
    added = _finite(name, amount)
    if added < 0:
        raise ValueError(f"metric {name} is a counter and takes no negative amount: {amount!r}")
    if added:
        _send([(_field(name, "total", _labels(spec, labels)), added)])


def _finite(name: str, value: float) -> float:
    """``value`` as a float; ValueError where it is not finite or too large for one."""
    try:
        number = float(value)
    except OverflowError:  # an int beyond a float's range
        number = math.inf
    if not math.isfinite(number):
        raise ValueError(f"metric {name} takes finite amounts, not {value!r}")
    return number


def metric_observe(name: str, value: float, **labels: Any) -> None:
    """Record one observation ``value`` (seconds) of histogram ``name``. Fails open; raises
    ValueError as ``metric_count`` does."""
    spec = METRICS[name]
    if spec.kind != "histogram":
        raise ValueError(f"metric {name} is a {spec.kind}")
    observed = _finite(name, value)
    clean = _labels(spec, labels)
    le = next(bound for bound in spec.buckets if observed <= bound)
    _send(
        [
            (_field(name, "bucket", clean, repr(le)), 1.0),
            (_field(name, "sum", clean), observed),
        ]
    )


# --- reading, for /metrics ------------------------------------------------------------------


@dataclass
class StoredFigures:
    """The stored figures grouped by metric: ``{name: {labels: {part/le: value}}}``."""

    values: dict[str, dict[Labels, dict[str, float]]]

    @classmethod
    def read(cls) -> StoredFigures:
        metrics_send_now()  # this process's own figures, up to the moment
        grouped: dict[str, dict[Labels, dict[str, float]]] = {}
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
    metrics_send_now()
    metrics_store().clear()
