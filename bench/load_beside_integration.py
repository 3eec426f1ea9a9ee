"""Subscribes beside long Integration API calls: what a long request costs the storefront.

    .venv/bin/python bench/load_beside_integration.py [--server gthread:3x8 ...] [--rounds 3]
                                                      [--calls 2] [--duration 8]

The subscribe endpoint under wrk (``--connections`` 8, ``bench/load.py``'s mix) for
``--duration`` s, alone and then while ``--calls`` clients each post Integration API stock calls
back to back, round by round, each call on a new connection (so it lands on whichever worker
accepts it). Each call holds 10,000 entries naming SKUs that do not exist (about 3.6 MB): the
API reads, parses and checks all of it and refuses it with a 400, some 0.3 s of Python per call
on the reference machine, and writes nothing, so every round sees the same call (an accepted
call of that size takes longer, more of it waiting on PostgreSQL). The report cannot tell which
GIL switch interval the workers ran with: that is ``gunicorn.conf.py``'s unless a
``GUNICORN_CMD_ARGS="-c FILE"`` says otherwise. gunicorn runs as ``gunicorn.conf.py`` ships
it unless ``--server`` says otherwise; the database, the Redis dbs and the settings are
``bench/load.py``'s (database dropped and dbs flushed at the end). Reports, per
configuration, the endpoint's requests a second and p50/p99 alone and beside the calls, and the
calls' count and mean time.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
from load import (
    BODIES_PER_SECOND,
    ENDPOINT_PATH,
    WARM_UP_SECONDS,
    RunResult,
    Server,
    ServerConfig,
    database_drop,
    database_load,
    environment_prepare,
    log_errors,
    mix_generate,
    mix_write,
    redis_flush,
    wrk_run,
)

INTEGRATION_PATH = "/api/integration-api/stock"
INTEGRATION_TOKEN = "bench-integration-token-0123456789"  # noqa: S105 (a throwaway server's)
CALL_ENTRIES = 10_000


def refused_call_body() -> bytes:
    """A stock call of ``CALL_ENTRIES`` entries, each naming a SKU the catalog does not hold."""
    entries = [
        {"sku": f"UNKNOWN-{index:05d}-{'q' * 300}", "warehouse": "Stockholm", "physical": 1}
        for index in range(CALL_ENTRIES)
    ]
    return json.dumps({"stock": entries}).encode()


class CallLoop:
    """``clients`` threads posting ``body`` to the Integration API back to back until stopped."""

    def __init__(self, *, url: str, body: bytes, clients: int) -> None:
        self.url, self.body = url, body
        self.stopping = threading.Event()
        self.seconds: list[float] = []
        self.statuses: list[int] = []
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]

    def _run(self) -> None:
        # A new connection per call (``Connection: close``), so that each call lands on whichever
        # worker accepts it: a kept-alive connection would pin a client to one worker for the
        # whole round, and whether the two clients shared a worker would decide the round.
        while not self.stopping.is_set():
            started = time.monotonic()
            try:
                status = requests.post(
                    self.url,
                    data=self.body,
                    headers={
                        "Authorization": f"Bearer {INTEGRATION_TOKEN}",
                        "Content-Type": "application/json",
                        "Connection": "close",
                    },
                    timeout=60,
                ).status_code
            except requests.RequestException:
                status = 0  # no answer: reported with the statuses
            self.seconds.append(time.monotonic() - started)
            self.statuses.append(status)

    def __enter__(self) -> CallLoop:
        for thread in self.threads:
            thread.start()
        time.sleep(0.5)  # every client has a call in the server
        return self

    def __exit__(self, *_: object) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=60)


def configuration_measure(
    *, config: ServerConfig, environment: dict[str, str], args: argparse.Namespace, folder: Path
) -> list[str]:
    """Rounds of the endpoint alone and beside the calls on one configuration; report lines."""
    server = Server(config, environment, folder / "gunicorn.log")
    mix_file = folder / "mix.txt"
    body = refused_call_body()
    lines = [f"gunicorn {config}"]
    try:
        server.wait_ready()
        mix_write(
            mix_generate(tag="iw", count=WARM_UP_SECONDS * BODIES_PER_SECOND, seed=7), mix_file
        )
        wrk_run(
            url=server.url(ENDPOINT_PATH),
            mix_file=mix_file,
            connections=args.connections,
            seconds=WARM_UP_SECONDS,
            target="endpoint",
        )
        alone: list[RunResult] = []
        beside: list[RunResult] = []
        calls: list[float] = []
        statuses: list[int] = []

        def endpoint_run(tag: str, seed: int) -> RunResult:
            mix = mix_generate(tag=tag, count=args.duration * BODIES_PER_SECOND, seed=seed)
            mix_write(mix, mix_file)
            return wrk_run(
                url=server.url(ENDPOINT_PATH),
                mix_file=mix_file,
                connections=args.connections,
                seconds=args.duration,
                target="endpoint",
            )

        for index in range(args.rounds):
            tag = f"i{config.workers}{config.threads}{index}"
            alone.append(endpoint_run(f"{tag}a", index))
            with CallLoop(url=server.url(INTEGRATION_PATH), body=body, clients=args.calls) as loop:
                beside.append(endpoint_run(f"{tag}b", index))
            calls += loop.seconds
            statuses += loop.statuses
    finally:
        server.stop()
    problems = log_errors(folder / "gunicorn.log")
    for name, results in (("alone", alone), (f"beside {args.calls} call loops", beside)):
        lines.append(
            f"  {name:<22} req/s {', '.join(f'{r.rate:.0f}' for r in results)}; "
            f"p50 ms {', '.join(f'{r.p50_ms:.1f}' for r in results)}; "
            f"p99 ms {', '.join(f'{r.p99_ms:.1f}' for r in results)}; "
            f"5xx and socket errors {sum(r.statuses.get('5xx', 0) + r.errors for r in results)}"
        )
    lines.append(
        f"  Integration API calls  {len(calls)}, mean {statistics.fmean(calls or [0]):.2f} s, "
        f"statuses {sorted(set(statuses))} (0: no answer)"
    )
    if problems:
        lines.append("  gunicorn log, errors:\n" + "\n".join(problems[:20]))
    return lines


def at_least_one(text: str) -> int:
    """An argument that must be a whole number of 1 or more."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: a whole number of 1 or more")
    return int(text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", action="append", type=ServerConfig.parse)
    parser.add_argument("--rounds", type=at_least_one, default=3, help="rounds each way (3)")
    parser.add_argument("--duration", type=at_least_one, default=8, help="seconds per run (8)")
    parser.add_argument("--calls", type=at_least_one, default=2, help="Integration API clients (2)")
    parser.add_argument("--connections", type=at_least_one, default=8, help="wrk connections (8)")
    args = parser.parse_args(argv)
    configs = args.server or [ServerConfig.shipped()]
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install -y wrk")

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    environment = environment_prepare()
    environment["INTEGRATION_API_TOKEN"] = INTEGRATION_TOKEN
    try:
        database_load()
        redis_flush()
        with tempfile.TemporaryDirectory() as folder:
            for config in configs:
                for line in configuration_measure(
                    config=config, environment=environment, args=args, folder=Path(folder)
                ):
                    print(line, flush=True)
    finally:
        redis_flush()
        database_drop()


if __name__ == "__main__":
    main()
