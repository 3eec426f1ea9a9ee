"""Load: the Checkout API against a one-INSERT ceiling, on gunicorn, PostgreSQL and Redis.

    .venv/bin/python bench/load.py [--server gthread:3x8 --server sync:4] [--rounds 3]

Without ``--server`` it runs what ``gunicorn.conf.py`` ships on this machine: ``gthread``, one
process per core, 4 threads each (``WEB_CONCURRENCY`` and ``GUNICORN_THREADS`` change it).

Runs the web app the production way (``gunicorn config.wsgi``, settings ``config.settings.bench``:
production plus the ceiling app) against a throwaway PostgreSQL database
(``backinstock_bench_load``, created with ``bench/import_catalog.py``'s helper and dropped at the
end) loaded with the demo catalog, the Redis cache (throttles) in Redis db 12 and the Celery
broker in Redis db 13. No Celery worker runs; the request queues nothing (the pending row is the
outbox), so the broker backlog printed at the end must be 0. Both Redis dbs are flushed at the end.

For every ``--server`` configuration, two targets:

- the endpoint, ``POST /api/checkout-api/back-in-stock-subscription``, with a realistic mix of
  new subscriptions, repeats of earlier ones and invalid requests (which must get 400);
- the ceiling, ``POST /bench/ceiling``: a plain Django view on the same stack (same gunicorn,
  middleware, database and machine) that parses the same bodies and inserts one row.

and for each target:

- peak: ``wrk`` (one thread, ``--connections`` connections, closed loop), ``--rounds`` rounds of
  ``--duration`` s, the two targets alternating so that other load on the machine hits both;
- half rate: an open-loop asyncio client in this process sending at half the target's peak rate
  on a fixed schedule for ``--half-duration`` s; latency counts from each request's scheduled
  send time, so a stalled server is not hidden by the client waiting for it.

Every run also records the CPU time used per request by gunicorn (master and workers), the
PostgreSQL backends of the bench database, Redis (the whole server) and the load generator, and
how busy the machine was with anything else. All traffic is on 127.0.0.1.
"""

import argparse
import asyncio
import contextlib
import json
import os
import random
import resource
import runpy
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from io import StringIO
from pathlib import Path
from typing import Any, cast

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the project's packages, which gunicorn.conf.py imports
VENV_BIN = Path(sys.executable).parent
DEMO_CATALOG = ROOT / "shop" / "catalogs" / "demo.json"
LUA_SCRIPT = Path(__file__).resolve().parent / "loadmix.lua"
ENDPOINT_PATH = "/api/checkout-api/back-in-stock-subscription"
CEILING_PATH = "/bench/ceiling"
TARGETS = {"endpoint": ENDPOINT_PATH, "ceiling": CEILING_PATH}
BENCH_DATABASE = "backinstock_bench_load"
POSTGRES_SERVER = os.environ.get(
    "BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_SERVER = "redis://127.0.0.1:6379"
CACHE_REDIS_DB = 12
BROKER_REDIS_DB = 13

# The mix (fractions of all requests): the rest are new subscriptions.
REPEAT_SHARE = 0.25
INVALID_SHARE = 0.10
# A repeat re-sends a subscription sent at least this many requests earlier (so it is stored).
REPEAT_DISTANCE = 200
# Bodies generated per second of a run: more than any run sends, so the list never wraps.
BODIES_PER_SECOND = 3000
WARM_UP_SECONDS = 3
SERVER_START_TIMEOUT = 30.0
HALF_RATE_CONNECTIONS = 32
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
CPU_PARTS = ("gunicorn", "postgres", "redis", "generator")
# --without PART: the server's environment for a run that leaves that part of the endpoint out.
# (The request no longer publishes anything to the broker, so "publish" is gone.)
DIAGNOSTICS = {
    "throttles": {"SUBSCRIBE_RATE_PER_CLIENT": "none", "SUBSCRIBE_RATE_PER_EMAIL": "none"},
}


@dataclass(frozen=True)
class MixEntry:
    body: str
    kind: str  # "new", "repeat" or "invalid"

    @property
    def expected_status(self) -> int:
        return 400 if self.kind == "invalid" else 201


@dataclass
class RunResult:
    """One run (or the sum of a target's peak rounds)."""

    target: str
    mode: str  # "peak" or "half"
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    statuses: Counter[str] = field(default_factory=Counter)
    errors: int = 0
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds by part, and "other"
    notes: list[str] = field(default_factory=list)
    round_rates: list[float] = field(default_factory=list)  # a peak total's rounds, in order

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def cpu_ms_per_request(self, part: str) -> float:
        return self.cpu.get(part, 0.0) / self.requests * 1000 if self.requests else 0.0

    @property
    def server_cpu_ms(self) -> float:
        """CPU per request of what serves it: gunicorn, PostgreSQL and Redis."""
        return sum(self.cpu_ms_per_request(part) for part in ("gunicorn", "postgres", "redis"))


# --- the mix --------------------------------------------------------------------------------------


def catalog_items(path: Path) -> tuple[list[str], list[str]]:
    """``"<displayItemId>-<sizeId>"`` of the published and of the unpublished display items."""
    catalog = json.loads(path.read_text(encoding="utf-8"))
    published: list[str] = []
    unpublished: list[str] = []
    for product in catalog["products"]:
        for variant in product["variants"]:
            items = [f"{variant['displayItemId']}-{size['id']}" for size in variant["sizes"]]
            (published if variant.get("published", True) else unpublished).extend(items)
    return published, unpublished


def ship_to_locations(path: Path) -> list[dict[str, str]]:
    """Every ship-to country, and every state of those that have states."""
    catalog = json.loads(path.read_text(encoding="utf-8"))
    locations = []
    for country in catalog["countries"]:
        if not (country.get("market") and country.get("pricelist")):
            continue
        states = country.get("states") or []
        if states:
            locations += [{"country": country["code"], "state": s["code"]} for s in states]
        else:
            locations.append({"country": country["code"]})
    return locations


def mix_generate(*, tag: str, count: int, seed: int) -> list[MixEntry]:
    """``count`` request bodies: new subscriptions, repeats of earlier ones, invalid requests.

    New subscriptions use distinct addresses over every published size and ship-to location
    (US states included), sometimes with a language. A repeat re-sends an earlier subscription,
    half the time with the address upper-cased (the same subscription, case-insensitively).
    Invalid requests each have one bad field: an unknown or unpublished item, a bad address, a
    missing or superfluous state, a country that is not a ship-to country.
    """
    rng = random.Random(seed)
    items, unpublished = catalog_items(DEMO_CATALOG)
    locations = ship_to_locations(DEMO_CATALOG)
    stated = [location for location in locations if "state" in location]
    stateless = [location for location in locations if "state" not in location]
    languages = [None, None, None, None, "en", "sv", "de"]
    new_bodies: list[dict[str, Any]] = []
    entries = []
    for index in range(count):
        roll = rng.random()
        if roll < INVALID_SHARE:
            body: dict[str, Any] = {
                "item": rng.choice(items),
                "shipTo": rng.choice(locations),
                "email": f"bad.{tag}.{index}@example.com",
            }
            flaw = rng.randrange(6)
            if flaw == 0:
                body["item"] = f"{body['item'].split('-')[0]}-99999"
            elif flaw == 1:
                body["item"] = rng.choice(unpublished or ["1-1"])
            elif flaw == 2:
                body["email"] = rng.choice(["not-an-email", f"bad.{index}@", "a b@example.com"])
            elif flaw == 3:
                body["shipTo"] = {"country": rng.choice(stated)["country"]}
            elif flaw == 4:
                body["shipTo"] = {"country": rng.choice(stateless)["country"], "state": "NY"}
            else:
                body["shipTo"] = {"country": "XX"}
            entries.append(MixEntry(json.dumps(body, separators=(",", ":")), "invalid"))
            continue
        eligible = len(new_bodies) - REPEAT_DISTANCE
        if roll < INVALID_SHARE + REPEAT_SHARE and eligible > 0:
            body = dict(new_bodies[rng.randrange(eligible)])
            if rng.random() < 0.5:
                body["email"] = body["email"].upper()
            entries.append(MixEntry(json.dumps(body, separators=(",", ":")), "repeat"))
            continue
        body = {
            "item": rng.choice(items),
            "shipTo": rng.choice(locations),
            "email": f"shopper.{tag}.{index}@example{index % 7}.com",
        }
        language = rng.choice(languages)
        if language:
            body["language"] = language
        new_bodies.append(body)
        entries.append(MixEntry(json.dumps(body, separators=(",", ":")), "new"))
    return entries


def mix_write(entries: list[MixEntry], path: Path) -> None:
    path.write_text("".join(entry.body + "\n" for entry in entries), encoding="utf-8")


def mix_summary(entries: list[MixEntry]) -> str:
    kinds = Counter(entry.kind for entry in entries)
    total = len(entries) or 1
    return ", ".join(f"{kind} {kinds[kind] / total:.0%}" for kind in ("new", "repeat", "invalid"))


# --- the database, the cache and the broker -------------------------------------------------------


def environment_prepare() -> dict[str, str]:
    """Point this process (and the server's) at a fresh bench database and the bench Redis dbs."""
    import import_catalog  # bench/import_catalog.py, next to this script

    # The helper drops and creates ``import_catalog.BENCH_DATABASE``; this bench has a database
    # of its own, so that benches running at the same time do not drop each other's.
    import_catalog.BENCH_DATABASE = BENCH_DATABASE
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.bench"
    os.environ["DATABASE_URL"] = import_catalog.database_recreate()
    os.environ["REDIS_URL"] = f"{REDIS_SERVER}/{CACHE_REDIS_DB}"
    os.environ["CELERY_BROKER_URL"] = f"{REDIS_SERVER}/{BROKER_REDIS_DB}"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    return {
        name: os.environ[name]
        for name in (
            "DJANGO_SETTINGS_MODULE",
            "DATABASE_URL",
            "REDIS_URL",
            "CELERY_BROKER_URL",
            "LOG_LEVEL",
        )
    }


def database_load() -> None:
    """Migrate, import the demo catalog, and switch back in stock on."""
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import DatabaseError, connection
    from django.utils import timezone

    from klaviyo_sync.models import IntegrationSettings

    call_command("migrate", verbosity=0)
    call_command("import_catalog", str(DEMO_CATALOG), "--no-progress", stdout=StringIO())
    IntegrationSettings.objects.update_or_create(
        pk=IntegrationSettings.SINGLETON_PK,
        defaults={"first_full_sync_completed_at": timezone.now(), "back_in_stock_enabled": True},
    )
    # The import's writes flushed now rather than by a checkpoint in the middle of whichever
    # round comes first (a superuser's right: skipped where the bench's role lacks it).
    with connection.cursor() as cursor, contextlib.suppress(DatabaseError):
        cursor.execute("CHECKPOINT")
    connection.close()


def database_drop() -> None:
    import psycopg
    from django.db import connections

    connections.close_all()
    with psycopg.connect(POSTGRES_SERVER, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {BENCH_DATABASE} WITH (FORCE)")


def redis_flush() -> None:
    import redis

    for db in (CACHE_REDIS_DB, BROKER_REDIS_DB):
        redis.Redis.from_url(f"{REDIS_SERVER}/{db}").flushdb()


def broker_backlog() -> int:
    """Messages waiting in the broker's default queue (pushes nobody consumes here)."""
    import redis

    client = redis.Redis.from_url(f"{REDIS_SERVER}/{BROKER_REDIS_DB}")
    return cast(int, client.llen("celery"))  # redis-py types sync and async


def rows_stored() -> tuple[int, int]:
    """(subscriptions, ceiling rows) in the bench database."""
    from django.apps import apps
    from django.db import connection

    from backinstock.models import Subscription

    hits = apps.get_model("ceiling", "Hit")  # bench.ceiling, installed by the bench settings
    counts = (Subscription.objects.count(), hits.objects.count())
    connection.close()
    return counts


# --- CPU accounting -------------------------------------------------------------------------------


def _process_cpu_seconds(pid: int) -> tuple[int, float] | None:
    """(parent pid, user + system CPU seconds) of a process, None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # fields from the 3rd on: state, ppid, ...
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _machine_busy_seconds() -> float:
    """CPU seconds all cores spent on anything but idling since boot."""
    values = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle, iowait = values[3], values[4]
    return (sum(values[:8]) - idle - iowait) / CLOCK_TICKS


class CpuMeter:
    """Samples CPU time of gunicorn, the bench database's backends, Redis and the generator."""

    def __init__(self, gunicorn_pid: int) -> None:
        import psycopg
        import redis

        self.gunicorn_pid = gunicorn_pid
        self.postgres = psycopg.connect(POSTGRES_SERVER, autocommit=True)
        self.redis = redis.Redis.from_url(f"{REDIS_SERVER}/{CACHE_REDIS_DB}")

    def close(self) -> None:
        self.postgres.close()

    def sample(self) -> dict[tuple[str, int], float]:
        pids = [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]
        sample: dict[tuple[str, int], float] = {}
        for pid in pids:
            found = _process_cpu_seconds(pid)
            if found is not None and self.gunicorn_pid in (pid, found[0]):
                sample[("gunicorn", pid)] = found[1]
        backends = self.postgres.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s", [BENCH_DATABASE]
        ).fetchall()
        for (pid,) in backends:
            found = _process_cpu_seconds(pid)
            if found is not None:
                sample[("postgres", pid)] = found[1]
        info = cast(dict[str, Any], self.redis.info("cpu"))  # redis-py types sync and async
        sample[("redis", 0)] = float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        sample[("generator", 0)] = children.ru_utime + children.ru_stime + time.process_time()
        sample[("machine", 0)] = _machine_busy_seconds()
        return sample

    @contextmanager
    def measuring(self, into: dict[str, float]) -> Iterator[None]:
        """CPU seconds used by each part while the block runs, added to ``into``."""
        before = self.sample()
        yield
        after = self.sample()
        used = dict.fromkeys([*CPU_PARTS, "machine"], 0.0)
        for key, seconds in after.items():
            if key in before:  # a process that came or went in between is left out
                used[key[0]] += seconds - before[key]
        used["other"] = used.pop("machine") - sum(used[part] for part in CPU_PARTS)
        for part, seconds in used.items():
            into[part] = into.get(part, 0.0) + seconds


# --- gunicorn -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerConfig:
    worker_class: str
    workers: int
    threads: int

    @classmethod
    def parse(cls, text: str) -> "ServerConfig":
        """``sync:4`` or ``gthread:2x4`` (workers x threads)."""
        worker_class, _, size = text.partition(":")
        workers, _, threads = size.partition("x")
        valid_threads = threads.isdigit() if worker_class == "gthread" else not threads
        if worker_class not in {"sync", "gthread"} or not workers.isdigit() or not valid_threads:
            raise argparse.ArgumentTypeError(f"{text!r}: use sync:N or gthread:NxT")
        return cls(worker_class, int(workers), int(threads or 1))

    @classmethod
    def shipped(cls) -> "ServerConfig":
        """What ``gunicorn.conf.py`` runs on this machine (its ``WEB_CONCURRENCY`` and
        ``GUNICORN_THREADS`` included)."""
        settings = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
        return cls(settings["worker_class"], settings["workers"], settings["threads"])

    def __str__(self) -> str:
        if self.worker_class == "sync":
            return f"sync, {self.workers} workers"
        return f"gthread, {self.workers} workers x {self.threads} threads"

    def arguments(self) -> list[str]:
        arguments = ["--workers", str(self.workers), "--worker-class", self.worker_class]
        if self.worker_class == "gthread":
            arguments += ["--threads", str(self.threads)]
        return arguments


def log_errors(log: Path) -> list[str]:
    """The lines of a gunicorn log (``Server``'s) that report an error."""
    text = log.read_text(errors="replace")
    return [line for line in text.splitlines() if "Error" in line or "CRITICAL" in line]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Server:
    """``gunicorn config.wsgi`` in its own process group, so stopping it stops its workers."""

    def __init__(self, config: ServerConfig, environment: dict[str, str], log: Path) -> None:
        self.config = config
        self.port = free_port()
        self.log_file = log.open("ab")
        command = [
            str(VENV_BIN / "gunicorn"),
            "config.wsgi",
            "--bind",
            f"127.0.0.1:{self.port}",
            *config.arguments(),
            "--backlog",
            "2048",
            "--timeout",
            "30",
            "--log-level",
            "warning",
        ]
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**os.environ, **environment},
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def wait_ready(self) -> None:
        """Until the ceiling view answers (405 to a GET: Django, its URLs and the app loaded)."""
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}")
            try:
                urllib.request.urlopen(self.url(CEILING_PATH), timeout=1)  # noqa: S310
            except urllib.error.HTTPError as answer:
                if answer.code == 405:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not answer within {SERVER_START_TIMEOUT:.0f} s")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
        self.log_file.close()


# --- the load generators --------------------------------------------------------------------------


def wrk_run(*, url: str, mix_file: Path, connections: int, seconds: int, target: str) -> RunResult:
    """One closed-loop run of wrk (one thread) over the mix file; returns its figures."""
    command = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "5s",
        "-s",
        str(LUA_SCRIPT),
        url,
        "--",
        str(mix_file),
    ]
    finished = subprocess.run(
        command, capture_output=True, text=True, timeout=seconds + 60, check=True
    )
    line = next(
        (text for text in finished.stdout.splitlines() if text.startswith("BENCH_JSON ")), None
    )
    if line is None:
        raise RuntimeError(f"wrk printed no figures:\n{finished.stdout}\n{finished.stderr}")
    figures = json.loads(line.removeprefix("BENCH_JSON "))
    statuses = Counter(
        {
            "201": figures["c201"],
            "other 2xx": figures["c2xx"],
            "400": figures["c400"],
            "429": figures["c429"],
            "other 4xx": figures["c4xx"],
            "5xx": figures["c5xx"],
            "other": figures["cother"],
        }
    )
    errors = sum(figures[name] for name in ("connect_errors", "read_errors", "write_errors"))
    return RunResult(
        target=target,
        mode="peak",
        requests=figures["requests"],
        seconds=figures["duration_us"] / 1e6,
        p50_ms=figures["p50_us"] / 1000,
        p99_ms=figures["p99_us"] / 1000,
        statuses=+statuses,
        errors=errors + figures["timeouts"],
        notes=["MIX LIST WRAPPED"] if figures["wrapped"] else [],
    )


def _request_bytes(*, path: str, port: int, body: str) -> bytes:
    payload = body.encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    )
    return head.encode() + payload


async def _response_read(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one HTTP/1.1 response; returns its status and whether the connection stays open."""
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionResetError("connection closed before the answer")
    status = int(status_line.split()[1])
    length, keep_alive = 0, True
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "connection" and value.strip().lower() == "close":
            keep_alive = False
    await reader.readexactly(length)
    return status, keep_alive


def status_class(status: int) -> str:
    if status in (201, 400, 429):
        return str(status)
    if status >= 500:
        return "5xx"
    return f"other {status // 100}xx"


async def _open_loop(
    *, port: int, requests: list[bytes], rate: float, connections: int
) -> tuple[list[float], Counter[str], int, float]:
    """Send ``requests`` at ``rate`` per second; (latencies, answers, failures, seconds)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    failures = 0
    last_done = 0.0

    async def connection_worker() -> None:
        nonlocal failures, last_done
        reader: asyncio.StreamReader | None = None
        writer: asyncio.StreamWriter | None = None
        while (job := await queue.get()) is not None:
            scheduled, request = job
            status = None
            for _attempt in range(2):  # a kept-alive connection the server closed: once more
                try:
                    if writer is None or reader is None:
                        reader, writer = await asyncio.open_connection("127.0.0.1", port)
                    writer.write(request)
                    status, keep_alive = await asyncio.wait_for(_response_read(reader), 5)
                except (OSError, asyncio.IncompleteReadError, TimeoutError):
                    if writer is not None:
                        writer.close()
                    reader = writer = None
                    continue
                if not keep_alive:
                    writer.close()
                    reader = writer = None
                break
            last_done = loop.time()
            if status is None:
                failures += 1
                continue
            latencies.append(last_done - scheduled)
            statuses[status_class(status)] += 1
        if writer is not None:
            writer.close()

    workers = [asyncio.create_task(connection_worker()) for _ in range(connections)]
    started = loop.time() + 0.05
    for index, request in enumerate(requests):
        due = started + index / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait((due, request))
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.wait_for(asyncio.gather(*workers), timeout=60)
    return latencies, statuses, failures, last_done - started


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile of ``values`` (0 when empty)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def open_loop_run(
    *, port: int, path: str, mix: list[MixEntry], rate: float, seconds: int, target: str
) -> RunResult:
    """Send at ``rate`` requests/s on a fixed schedule for ``seconds``; returns its figures."""
    sent = mix[: int(rate * seconds)]
    requests = [_request_bytes(path=path, port=port, body=entry.body) for entry in sent]
    latencies, statuses, failures, elapsed = asyncio.run(
        _open_loop(port=port, requests=requests, rate=rate, connections=HALF_RATE_CONNECTIONS)
    )
    result = RunResult(
        target=target,
        mode="half",
        requests=len(latencies),
        seconds=elapsed,
        p50_ms=percentile(latencies, 0.50) * 1000,
        p99_ms=percentile(latencies, 0.99) * 1000,
        statuses=statuses,
        errors=failures,
        notes=[f"scheduled {rate:.0f}/s"],
    )
    # Every request's answer is known here: each must be the one its kind calls for.
    expected = Counter(str(entry.expected_status) for entry in sent)
    if target == "endpoint" and (statuses["201"], statuses["400"]) != (
        expected["201"],
        expected["400"],
    ):
        result.notes.append(f"EXPECTED 201 x{expected['201']}, 400 x{expected['400']}")
    return result


# --- one server configuration ---------------------------------------------------------------------


def _peak_total(rounds: list[RunResult]) -> RunResult:
    """A target's peak rounds as one result: summed counts, median latency percentiles."""
    total = RunResult(
        target=rounds[0].target,
        mode="peak",
        requests=sum(r.requests for r in rounds),
        seconds=sum(r.seconds for r in rounds),
        p50_ms=statistics.median(r.p50_ms for r in rounds),
        p99_ms=statistics.median(r.p99_ms for r in rounds),
        errors=sum(r.errors for r in rounds),
    )
    for result in rounds:
        total.statuses.update(result.statuses)
        for part, seconds in result.cpu.items():
            total.cpu[part] = total.cpu.get(part, 0.0) + seconds
        total.notes += [note for note in result.notes if note not in total.notes]
    total.round_rates = [r.rate for r in rounds]
    rates = ", ".join(f"{r.rate:.0f}" for r in rounds)
    total.notes.insert(0, f"rounds in order {rates}/s")
    return total


def configuration_measure(
    *,
    config: ServerConfig,
    environment: dict[str, str],
    folder: Path,
    args: argparse.Namespace,
    tag: str,
) -> list[RunResult]:
    """Peak rounds and a half-rate run of both targets on one gunicorn configuration."""
    server = Server(config, environment, folder / "gunicorn.log")
    meter: CpuMeter | None = None
    try:
        server.wait_ready()
        meter = CpuMeter(server.process.pid)
        for target, path in TARGETS.items():
            warm = mix_generate(
                tag=f"{tag}w{target[0]}", count=WARM_UP_SECONDS * BODIES_PER_SECOND, seed=7
            )
            mix_write(warm, folder / "mix.txt")
            wrk_run(
                url=server.url(path),
                mix_file=folder / "mix.txt",
                connections=args.connections,
                seconds=WARM_UP_SECONDS,
                target=target,
            )
        rounds: dict[str, list[RunResult]] = {target: [] for target in TARGETS}
        for index in range(args.rounds):
            for target, path in TARGETS.items():
                mix = mix_generate(
                    tag=f"{tag}p{index}{target[0]}",
                    count=args.duration * BODIES_PER_SECOND,
                    seed=11 + index,
                )
                mix_write(mix, folder / "mix.txt")
                cpu: dict[str, float] = {}
                stored_before = rows_stored()
                with meter.measuring(cpu):
                    result = wrk_run(
                        url=server.url(path),
                        mix_file=folder / "mix.txt",
                        connections=args.connections,
                        seconds=args.duration,
                        target=target,
                    )
                result.cpu = cpu
                stored = rows_stored()[0] - stored_before[0]
                if target == "endpoint":
                    # wrk sends the list in order: the answers expected of what it sent.
                    sent = Counter(entry.kind for entry in mix[: result.requests])
                    result.notes.append(
                        f"sent new/repeat/invalid {sent['new']}/{sent['repeat']}/"
                        f"{sent['invalid']}, stored {stored}"
                    )
                rounds[target].append(result)
        results = [_peak_total(rounds[target]) for target in TARGETS]
        for target, path in TARGETS.items():
            peak = next(r for r in results if r.target == target)
            rate = peak.rate / 2
            mix = mix_generate(
                tag=f"{tag}h{target[0]}", count=int(rate * args.half_duration) + 1, seed=13
            )
            cpu = {}
            with meter.measuring(cpu):
                half = open_loop_run(
                    port=server.port,
                    path=path,
                    mix=mix,
                    rate=rate,
                    seconds=args.half_duration,
                    target=target,
                )
            half.cpu = cpu
            results.append(half)
    finally:
        if meter is not None:
            meter.close()
        server.stop()
    return results


# --- the report -----------------------------------------------------------------------------------


def report(config: ServerConfig, results: list[RunResult]) -> str:
    lines = [f"gunicorn {config}", ""]
    lines.append(
        f"{'target':<9}{'run':<5}{'req/s':>7}{'p50 ms':>8}{'p99 ms':>8}"
        f"{'CPU ms/req: gunicorn':>22}{'postgres':>9}{'redis':>7}{'wrk/client':>11}"
        f"{'other load':>11}  answers"
    )
    for result in results:
        answers = ", ".join(f"{name} x{count}" for name, count in sorted(result.statuses.items()))
        if result.errors:
            answers += f", socket errors/timeouts x{result.errors}"
        other_share = result.cpu.get("other", 0.0) / result.seconds if result.seconds else 0.0
        lines.append(
            f"{result.target:<9}{result.mode:<5}{result.rate:>7.0f}{result.p50_ms:>8.1f}"
            f"{result.p99_ms:>8.1f}{result.cpu_ms_per_request('gunicorn'):>22.2f}"
            f"{result.cpu_ms_per_request('postgres'):>9.2f}"
            f"{result.cpu_ms_per_request('redis'):>7.2f}"
            f"{result.cpu_ms_per_request('generator'):>11.2f}"
            f"{other_share:>10.0%}c  {answers}  ({'; '.join(result.notes)})"
        )
    peak = {r.target: r for r in results if r.mode == "peak"}
    half = {r.target: r for r in results if r.mode == "half"}
    ratio = peak["endpoint"].rate / peak["ceiling"].rate if peak["ceiling"].rate else 0.0
    cpu_ratio = (
        peak["ceiling"].server_cpu_ms / peak["endpoint"].server_cpu_ms
        if peak["endpoint"].server_cpu_ms
        else 0.0
    )
    # Each endpoint round against the ceiling round run right after it: the machine's speed
    # drifts between rounds (other load, a shared host), and a pair shares most of it.
    pair_ratios = [
        endpoint / ceiling
        for endpoint, ceiling in zip(
            peak["endpoint"].round_rates, peak["ceiling"].round_rates, strict=True
        )
        if ceiling
    ]
    failures = sum(r.statuses["5xx"] + r.errors for r in results)
    lines += [
        "",
        f"endpoint / ceiling throughput: {ratio:.0%} (target >= 70%); round by round "
        + ", ".join(f"{pair:.0%}" for pair in pair_ratios)
        + f", median {statistics.median(pair_ratios):.0%}",
        f"ceiling / endpoint server CPU per request (gunicorn + postgres + redis): {cpu_ratio:.0%}",
        f"endpoint p99 at half its peak rate: {half['endpoint'].p99_ms:.1f} ms (target < 100 ms)",
        f"5xx answers and socket errors: {failures}" + (" (FAILURE)" if failures else ""),
        "other load: CPU used by other processes on the machine, in cores (2 = all of it)",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--server",
        action="append",
        type=ServerConfig.parse,
        help="gunicorn workers: sync:N or gthread:NxT; repeat to compare (default: what "
        "gunicorn.conf.py ships, gthread with a process per core, 4 threads each)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="peak rounds per target (3)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per peak round (10)")
    parser.add_argument("--half-duration", type=int, default=20, help="seconds at half rate (20)")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections (8)")
    parser.add_argument("--keep-db", action="store_true", help=f"keep {BENCH_DATABASE}")
    parser.add_argument(
        "--without",
        action="append",
        choices=sorted(DIAGNOSTICS),
        default=[],
        help="diagnostic: leave out a part of the endpoint's work to measure what it costs",
    )
    args = parser.parse_args(argv)
    configs = args.server or [ServerConfig.shipped()]
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install -y wrk")

    # A plain kill must stop gunicorn too: turn SIGTERM into an exit that runs the finally blocks.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    environment = environment_prepare()
    for part in args.without:
        environment.update(DIAGNOSTICS[part])
    try:
        database_load()
        redis_flush()
        print(
            f"{os.cpu_count()} CPUs shared by gunicorn, PostgreSQL, Redis and the load generator;"
            f" peak {args.rounds} x {args.duration} s, half rate {args.half_duration} s; mix: "
            f"{mix_summary(mix_generate(tag='x', count=20000, seed=1))}"
            + "".join(f"; DIAGNOSTIC: without {part}" for part in args.without),
            flush=True,
        )
        with tempfile.TemporaryDirectory(prefix="bench-load-") as name:
            folder = Path(name)
            for index, config in enumerate(configs):
                results = configuration_measure(
                    config=config,
                    environment=environment,
                    folder=folder,
                    args=args,
                    tag=f"r{int(time.time())}c{index}",
                )
                print()
                print(report(config, results), flush=True)
            problems = log_errors(folder / "gunicorn.log")
            if problems:
                print("\ngunicorn log, errors:\n" + "\n".join(problems[:20]))
    finally:
        print(
            f"\nbroker backlog (messages the requests queued; must be 0): {broker_backlog()};"
            " flushed"
        )
        redis_flush()
        if not args.keep_db:
            database_drop()


if __name__ == "__main__":
    main()
