"""Time from a subscribe's 201 to its back-in-stock subscription in the Klaviyo sandbox, under load.

    .venv/bin/python bench/subscribe_latency.py [--rate 100] [--seconds 30] [--server gthread:2x4]

Runs the whole product the production way, each part its own process: ``gunicorn config.wsgi``
(as ``gunicorn.conf.py`` ships it unless ``--server`` says otherwise; ``config.settings.bench``),
one ``celery -A config worker --beat`` (the dispatcher ticks every second inside it),
``python -m klaviyo_sandbox --rate-limits real``,
PostgreSQL (database ``backinstock_bench_load``, as ``bench/load.py`` makes it: the demo catalog,
back in stock on) and Redis (db 12 cache and throttles, db 13 broker, both flushed at the end).

An open-loop client sends new subscriptions (``bench/load.py``'s mix, new ones only) at
``--rate`` a second for ``--seconds``, each at its scheduled time whatever the server does. The
default, 100 a second for 30 s, is about half the endpoint's peak on the reference machine and
stays inside Klaviyo's 3,500 back-in-stock subscriptions a minute, so the figure is ours, not the
quota's. For each ``201`` the moment it came back is kept; the sandbox records the moment each
back-in-stock subscription reached it. Reports p50, p99 and the maximum of the difference, and how
many arrived. Exits 1 when a target is missed: every one arrived, p50 < 2 s, p99 < 10 s.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import requests
from catalog_sync import BENCH_API_KEY, Check, machine_line, sandbox_process, table_print
from load import (
    ENDPOINT_PATH,
    VENV_BIN,
    Server,
    ServerConfig,
    database_drop,
    database_load,
    environment_prepare,
    mix_generate,
    redis_flush,
)

ROOT = Path(__file__).resolve().parent.parent
P50_TARGET_SECONDS = 2.0
P99_TARGET_SECONDS = 10.0
ARRIVAL_TIMEOUT_SECONDS = 120.0
CLIENT_THREADS = 32


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)]


def sandbox_arrivals(url: str) -> dict[str, float]:
    """Address → when its back-in-stock subscription reached the sandbox (epoch seconds)."""
    with urllib.request.urlopen(f"{url}/_sandbox/state", timeout=30) as answer:  # noqa: S310
        state = json.load(answer)
    return {
        entry["email"]: datetime.fromisoformat(entry["at"]).timestamp()
        for entry in state["back_in_stock_subscriptions"]
    }


def send_open_loop(*, url: str, bodies: list[dict[str, object]], rate: float) -> dict[str, float]:
    """POST each body at its scheduled time; returns address → when its 201 came back."""
    answered: dict[str, float] = {}
    failures: list[str] = []
    lock = threading.Lock()
    local = threading.local()

    def send(body: dict[str, object]) -> None:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        try:
            response = session.post(url, json=body, timeout=30)
        except requests.RequestException as exc:
            with lock:
                failures.append(type(exc).__name__)
            return
        now = time.time()
        with lock:
            if response.status_code == 201:
                answered[str(body["email"]).lower()] = now
            else:
                failures.append(str(response.status_code))

    started = time.monotonic()
    with ThreadPoolExecutor(CLIENT_THREADS) as pool:
        for index, body in enumerate(bodies):
            delay = started + index / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            pool.submit(send, body)
    if failures:
        print(f"not 201: {len(failures)} ({', '.join(sorted(set(failures)))})")
    return answered


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=100.0, help="subscriptions a second (100)")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long to send (30)")
    parser.add_argument(
        "--server",
        type=ServerConfig.parse,
        help="gunicorn workers: sync:N or gthread:NxT (default: what gunicorn.conf.py ships)",
    )
    args = parser.parse_args(argv)
    server_config = args.server or ServerConfig.shipped()

    environment = environment_prepare()
    folder = ROOT / "var" / "bench"
    folder.mkdir(parents=True, exist_ok=True)
    try:
        database_load()
        redis_flush()
        with sandbox_process() as sandbox:
            environment.update(
                KLAVIYO_API_URL=sandbox.url, KLAVIYO_API_KEY=BENCH_API_KEY, LOG_LEVEL="WARNING"
            )
            os.environ.update(environment)
            server = Server(server_config, environment, folder / "latency-web.log")
            worker_log = (folder / "latency-worker.log").open("ab")
            worker = subprocess.Popen(
                [str(VENV_BIN / "celery"), "-A", "config", "worker", "--beat", "-l", "warning"],
                cwd=ROOT,
                env={**os.environ, **environment},
                stdout=worker_log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                server.wait_ready()
                time.sleep(3)  # the worker connects and its scheduler starts ticking
                count = int(args.rate * args.seconds)
                bodies = [
                    json.loads(entry.body)
                    for entry in mix_generate(tag=f"l{int(time.time())}", count=count * 3, seed=7)
                    if entry.kind == "new"
                ][:count]
                load_before = os.getloadavg()[0]
                answered = send_open_loop(
                    url=server.url(ENDPOINT_PATH), bodies=bodies, rate=args.rate
                )
                deadline = time.monotonic() + ARRIVAL_TIMEOUT_SECONDS
                arrivals: dict[str, float] = {}
                while time.monotonic() < deadline:
                    arrivals = sandbox_arrivals(sandbox.url)
                    if all(email in arrivals for email in answered):
                        break
                    time.sleep(1)
            finally:
                server.stop()
                worker.terminate()
                try:
                    worker.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    worker.kill()
                worker_log.close()
    finally:
        redis_flush()
        database_drop()

    latencies = [arrivals[e] - at for e, at in answered.items() if e in arrivals]
    missing = len(answered) - len(latencies)
    print(
        f"{len(bodies):,} new subscriptions at {args.rate:g}/s for {args.seconds:g} s; "
        f"gunicorn {server_config}, one worker with beat"
    )
    print(machine_line(load_before_first=load_before))
    print()
    p50 = statistics.median(latencies) if latencies else math.inf
    p99 = percentile(latencies, 0.99) if latencies else math.inf
    rows = [
        ("answered 201", f"{len(answered):,}"),
        ("arrived in the sandbox", f"{len(latencies):,}"),
        ("201 -> sandbox p50 (s)", f"{p50:.2f}"),
        ("201 -> sandbox p99 (s)", f"{p99:.2f}"),
        ("201 -> sandbox max (s)", f"{max(latencies, default=math.inf):.2f}"),
    ]
    checks = [
        Check("all arrived", f"{missing} missing", "0 missing", missing == 0 and bool(answered)),
        Check("p50", f"{p50:.2f} s", f"< {P50_TARGET_SECONDS:g} s", p50 < P50_TARGET_SECONDS),
        Check("p99", f"{p99:.2f} s", f"< {P99_TARGET_SECONDS:g} s", p99 < P99_TARGET_SECONDS),
    ]
    return 0 if table_print(rows, checks) else 1


if __name__ == "__main__":
    sys.exit(main())
