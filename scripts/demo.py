"""``make demo``: the whole product on one machine with no servers to install.

Starts the Klaviyo sandbox, prepares a SQLite database with the demo catalog, syncs the catalog
to the sandbox and switches back in stock on, then runs the web server and a Celery worker with
beat (embedded file-system broker) until Ctrl-C, which stops them all.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
WEB_PORT = int(os.environ.get("DEMO_WEB_PORT", "8000"))
SANDBOX_PORT = int(os.environ.get("DEMO_SANDBOX_PORT", "8100"))

# What the demo's processes take from the shell: what finds programs, files and the terminal,
# and nothing the settings read. Whatever else the shell exports (DATABASE_URL,
# CELERY_BROKER_URL, a real KLAVIYO_API_KEY, DJANGO_READ_DOT_ENV_FILE...) is left out, so that
# the demo never migrates, seeds or creates admin/admin in someone's real database.
SHELL_VARIABLES = ("PATH", "HOME", "USER", "LOGNAME", "SHELL", "TERM", "TMPDIR", "LANG", "TZ")


def demo_environment(shell: Mapping[str, str]) -> dict[str, str]:
    """The environment of every process the demo starts: ``SHELL_VARIABLES`` (and ``LC_*``)
    from ``shell``, then the demo's own settings, which no exported value can change: SQLite
    in ``db.sqlite3``, the file-system broker, the local-memory cache, the sandbox on
    ``SANDBOX_PORT`` with its key, and the demo's API keys."""
    kept = {
        name: value
        for name, value in shell.items()
        if name in SHELL_VARIABLES or name.startswith("LC_")
    }
    return {
        **kept,
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DJANGO_READ_DOT_ENV_FILE": "false",
        "DATABASE_URL": f"sqlite:///{ROOT / 'db.sqlite3'}",
        "CELERY_BROKER_URL": "filesystem://localhost/",
        "REDIS_URL": "",
        "KLAVIYO_API_URL": f"http://127.0.0.1:{SANDBOX_PORT}",
        "KLAVIYO_API_KEY": "pk_demo_sandbox",
        "SHOP_API_KEY": "demo-shop-key",
        "INTEGRATION_API_TOKEN": "demo-integration-token",
        "CHECKOUT_API_ALLOWED_ORIGINS": f"http://127.0.0.1:{WEB_PORT},http://localhost:{WEB_PORT}",
        "PYTHONUNBUFFERED": "1",
    }


ENVIRONMENT = demo_environment(os.environ)


# What the demo sets, written for commands run beside it (README "Commands against the demo").
DEMO_SETTINGS = (
    "DJANGO_SETTINGS_MODULE",
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "REDIS_URL",
    "KLAVIYO_API_URL",
    "KLAVIYO_API_KEY",
    "SHOP_API_KEY",
    "INTEGRATION_API_TOKEN",
    "CHECKOUT_API_ALLOWED_ORIGINS",
)
DEMO_ENV_FILE = ROOT / "var" / "demo.env"


def demo_env_file_write(path: Path = DEMO_ENV_FILE) -> None:
    """``KEY='value'`` lines of the demo's settings: sourced by a shell (``set -a; . FILE``).

    Readable by its owner only: it holds the API keys the demo runs with.
    """
    lines = [
        f"{name}={shlex.quote(ENVIRONMENT[name])}" for name in DEMO_SETTINGS if name in ENVIRONMENT
    ]
    path.parent.mkdir(exist_ok=True)
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text("# The running demo's settings (scripts/demo.py).\n" + "\n".join(lines) + "\n")


def manage(*args: str) -> None:
    subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=ENVIRONMENT, check=True)


def start(name: str, *command: str) -> subprocess.Popen[bytes]:
    print(f"--> starting {name}: {' '.join(command)}", flush=True)
    return subprocess.Popen(command, cwd=ROOT, env=ENVIRONMENT, start_new_session=True)


def wait_for(url: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    # Straight to our own local server, whatever http_proxy the shell exports.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    while time.monotonic() < deadline:
        try:
            with opener.open(url, timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within {seconds} s")


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def _interrupt(signum: int, frame: object) -> None:
    """The first TERM or Ctrl-C stops the demo. Any that follow are ignored, so that they cannot
    interrupt the stopping of its processes and leave them running: a TERM sent to the process
    group of ``make demo`` reaches the demo twice, as make passes on a TERM it gets."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


def stop_signals_handle() -> None:
    """A TERM (from a supervisor, or `timeout`) stops the children too, as Ctrl-C does."""
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)


def main() -> int:
    stop_signals_handle()
    processes: list[subprocess.Popen[bytes]] = []
    try:
        processes.append(
            start(
                "Klaviyo sandbox",
                PYTHON,
                "-m",
                "klaviyo_sandbox",
                "--port",
                str(SANDBOX_PORT),
                "--rate-limits",
                "real",
            )
        )
        wait_for(f"http://127.0.0.1:{SANDBOX_PORT}/")
        manage("migrate", "--noinput", "-v", "0")
        manage("import_catalog", "shop/catalogs/demo.json", "--no-progress")
        manage("demo_admin")
        manage("klaviyo", "sync-catalog", "--full", "--wait")
        manage("klaviyo", "configure", "--catalog-sync", "on", "--back-in-stock", "on")
        demo_env_file_write()
        processes.append(
            start(
                "Celery worker with beat",
                PYTHON,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--beat",
                "-l",
                "info",
                "--concurrency",
                "1",
                "--schedule",
                str(ROOT / "var" / "celerybeat-schedule"),
            )
        )
        processes.append(
            start("web", PYTHON, "manage.py", "runserver", "--noreload", f"127.0.0.1:{WEB_PORT}")
        )
        wait_for(f"http://127.0.0.1:{WEB_PORT}/api/schema")
        print(
            f"""
Demo running. Ctrl-C stops everything.
  Storefront API docs  http://127.0.0.1:{WEB_PORT}/api/docs
  Admin                http://127.0.0.1:{WEB_PORT}/admin/   (admin / admin)
  Klaviyo sandbox      http://127.0.0.1:{SANDBOX_PORT}/   (catalog, back-in-stock report)
Subscribe:
  curl -X POST http://127.0.0.1:{WEB_PORT}/api/checkout-api/back-in-stock-subscription \\
    -H 'Content-Type: application/json' \\
    -d '{{"item": "12366-23400", "shipTo": {{"country": "SE"}}, "email": "ann@example.com",
         "language": "sv"}}'
Commands against this demo, from another shell in {ROOT}:
  (set -a; . var/demo.env; .venv/bin/python manage.py klaviyo status)
Restock (then watch the variant's stock figure in the sandbox, and Ann's email at
  http://127.0.0.1:{SANDBOX_PORT}/emails):
  curl -X POST http://127.0.0.1:{WEB_PORT}/api/integration-api/stock \\
    -H 'Authorization: Bearer demo-integration-token' -H 'Content-Type: application/json' \\
    -d '{{"stock": [{{"sku": "HD-1-BLK-M", "warehouse": "Stockholm", "physical": 40}}]}}'
""",
            flush=True,
        )
        while all(process.poll() is None for process in processes):
            time.sleep(0.5)
        print("a demo process stopped; stopping the others", flush=True)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        stop(processes)
        DEMO_ENV_FILE.unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())
