"""``manage.py health worker|scheduler|web|ready``: a health check for supervisors.

Exit status 0 when healthy, 1 when not; one JSON line on stdout says why. ``worker`` and
``scheduler`` read the heartbeats in the database (``--name`` for one process, e.g.
``celery@$(hostname)``); ``web`` asks the web process's ``/healthz``; ``ready`` runs the
readiness checks of ``/readyz`` in this process.
"""

from __future__ import annotations

import json
import os
from typing import Any

import requests
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from operations.selectors import heartbeat_ages, readiness_checks, readiness_ok

WEB_TIMEOUT_SECONDS = 5


class Command(BaseCommand):
    help = "Exit 0 when the worker, the scheduler or the web process is healthy, 1 when not."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("process", choices=["worker", "scheduler", "web", "ready"])
        parser.add_argument(
            "--max-age",
            type=float,
            default=None,
            help="seconds a heartbeat may be old (default OPERATIONS_HEARTBEAT_MAX_AGE_SECONDS)",
        )
        parser.add_argument("--name", default=None, help="one process, e.g. celery@web-1")
        parser.add_argument(
            "--url",
            default=f"http://127.0.0.1:{os.environ.get('PORT', '8000')}/healthz",
            help="the web process's /healthz (default: this machine, port $PORT or 8000)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        process = options["process"]
        if process == "web":
            healthy, report = _web_check(options["url"])
        elif process == "ready":
            checks = readiness_checks()
            healthy, report = readiness_ok(checks), {"checks": checks}
        else:
            max_age = options["max_age"] or settings.OPERATIONS_HEARTBEAT_MAX_AGE_SECONDS
            age = heartbeat_ages(name=options["name"])[process]
            healthy = age is not None and age <= max_age
            report = {"heartbeatAgeSeconds": None if age is None else round(age, 1)}
        self.stdout.write(json.dumps({"process": process, "healthy": healthy, **report}))
        if not healthy:
            raise CommandError(f"{process} is not healthy", returncode=1)


def _web_check(url: str) -> tuple[bool, dict[str, Any]]:
    try:
        response = requests.get(url, timeout=WEB_TIMEOUT_SECONDS)
    except requests.RequestException as exc:
        return False, {"error": type(exc).__name__}
    return response.status_code == 200, {"status": response.status_code}
