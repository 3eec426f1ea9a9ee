"""The web process (``gunicorn config.wsgi``) and ``manage.py`` commands in subprocesses.

For fault tests whose web app must use another database than the test process's, e.g. a
private PostgreSQL cluster that the test restarts. Environments come from
``tests.worker.worker_environment`` so that the web process, the worker and the commands agree.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from tests.redis_server import free_port
from tests.worker import PROJECT_ROOT, process_group_stop, worker_environment

MANAGE_TIMEOUT_SECONDS = 120
START_TIMEOUT_SECONDS = 30


def production_environment(**extra: str) -> dict[str, str]:
    """``worker_environment`` with production settings as deployed, over plain HTTP."""
    return worker_environment(
        DJANGO_SETTINGS_MODULE="config.settings.production",
        DJANGO_SECRET_KEY="a-test-secret-key-that-is-long-enough-0123456789-abcdefgh",
        DJANGO_SECURE_SSL_REDIRECT="false",
        DJANGO_SECURE_HSTS_SECONDS="0",
        **extra,
    )


def manage(*args: str, env: dict[str, str]) -> str:
    """``python manage.py ARGS`` with this environment; its output, or a failure showing it."""
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=MANAGE_TIMEOUT_SECONDS,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(
            f"manage.py {' '.join(args)} exited {result.returncode}:\n"
            f"{result.stdout[-3000:]}{result.stderr[-3000:]}"
        )
    return result.stdout


@contextmanager
def running_web(*, env: dict[str, str], log_path: Path, workers: int = 1) -> Iterator[str]:
    """``gunicorn config.wsgi`` on a free port; yields its base URL once it answers HTTP.

    Stopped (TERM, then KILL, the whole process group) afterwards.
    """
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "config.wsgi",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--timeout",
        "30",
        "--graceful-timeout",
        "5",
    ]
    log = log_path.open("wb")
    process = subprocess.Popen(
        command,
        cwd=PROJECT_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for_http(url, process, log_path)
        yield url
    finally:
        process_group_stop(process)
        log.close()


def _wait_for_http(url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the web process exited:\n{log_path.read_text()[-3000:]}")
        try:
            requests.get(f"{url}/", timeout=1)  # any answer will do: it serves HTTP
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise AssertionError(f"the web process did not answer within {START_TIMEOUT_SECONDS} s")
