"""A real Celery worker (and beat) in a subprocess, for end-to-end and fault tests."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from kombu import pools as kombu_pools

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def database_url() -> str:
    """The URL of the database this test process uses (pytest-django's test database)."""
    db = connection.settings_dict
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host, port = db.get("HOST") or "127.0.0.1", db.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{db['NAME']}"


def worker_environment(**extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "KLAVIYO_API_URL": settings.KLAVIYO_API_URL,
        "KLAVIYO_API_KEY": settings.KLAVIYO_API_KEY,
        "KLAVIYO_STOCK_QUIET_SECONDS": str(settings.KLAVIYO_STOCK_QUIET_SECONDS),
        "KLAVIYO_STOCK_COALESCE_SECONDS": str(settings.KLAVIYO_STOCK_COALESCE_SECONDS),
        "KLAVIYO_CATALOG_COALESCE_SECONDS": str(settings.KLAVIYO_CATALOG_COALESCE_SECONDS),
        "KLAVIYO_PUSH_LEASE_SECONDS": str(settings.KLAVIYO_PUSH_LEASE_SECONDS),
        "PYTHONUNBUFFERED": "1",
    }
    env.update(extra)
    return env


def broker_purge() -> None:
    """Drop messages left in the test broker by tests that ran without a worker, and the
    "already queued" marks that went with them."""
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()
    cache.clear()


@contextmanager
def running_worker(
    *,
    log_path: Path,
    beat: bool = False,
    concurrency: int = 2,
    loglevel: str = "info",
    **env: str,
) -> Iterator[subprocess.Popen[bytes]]:
    """``celery -A config worker`` (with ``--beat``), stopped (TERM, then KILL) afterwards."""
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "config",
        "worker",
        "-l",
        "info",
        "--concurrency",
        str(concurrency),
        "--without-gossip",
        "--without-mingle",
    ]
    if beat:
        command += ["--beat", "--schedule", str(log_path.with_suffix(".beat"))]
    log = log_path.open("wb")
    process = subprocess.Popen(
        command,
        cwd=PROJECT_ROOT,
        env=worker_environment(**env),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        process_group_stop(process)
        log.close()


def process_group_stop(process: subprocess.Popen[bytes], *, grace: float = 15) -> None:
    """TERM a process started with ``start_new_session``, which stops its own children (a
    Celery worker's warm shutdown lets the running task finish; TERM to its pool processes too
    would kill that task and log WorkerLostError); KILL the whole group after ``grace``, and
    whatever of it is left once the process has gone."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def wait_until(condition, *, timeout: float, interval: float = 0.2, message: str = "") -> None:
    """Poll ``condition`` until it is truthy; fail with ``message`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise AssertionError(message or f"condition not met within {timeout} s")


@contextmanager
def celery_broker(url: str) -> Iterator[None]:
    """Point this process's Celery app (the web side that queues tasks) at another broker."""
    from config.celery_app import app

    previous = app.conf.broker_write_url

    def switch(to: str) -> None:
        # Publishing uses broker_write_url, which falls back to broker_url; both prefer the
        # CELERY_BROKER_URL environment variable (when set) to broker_url set here.
        app.conf.broker_url = app.conf.broker_write_url = to
        # kombu keeps one connection pool per URL in a global registry, which app.pool is an
        # entry of: closing that pool left it registered, closed, and every later publish to
        # its URL failed ("Acquire on closed pool"). Close and forget them all instead.
        kombu_pools.reset()
        app._pool = None
        app.amqp._producer_pool = None

    switch(url)
    try:
        yield
    finally:
        switch(previous)


def worker_kill(process: subprocess.Popen[bytes], *, timeout: float = 10) -> None:
    """SIGKILL a ``running_worker``'s whole process group (main process, pool, beat) at once, as
    the OOM killer or a lost machine would: no shutdown, no acknowledgement, no clean-up."""
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:  # the pool's processes go with their parent
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
