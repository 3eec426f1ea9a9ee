"""Log lines: one JSON object per line in production, readable lines in development.

Every record carries the request's correlation id (django-guid; carried into Celery tasks), or
``-`` for work that has none (start-up, the scheduler, gunicorn's own lines), the
subscription id while a task works on one, and never a shopper's address in a URL: ``email=``
in a query string (the Shop API's list and erase) is masked wherever it appears in a message.
Imported by the settings, so nothing here may import models.
"""

from __future__ import annotations

import contextvars
import logging
import re
from typing import Any

from celery.signals import task_postrun, task_prerun
from django_guid.context import guid
from pythonjsonlogger.core import RESERVED_ATTRS

CONSOLE_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(correlation_id)s] %(message)s"
JSON_FIELDS = "%(levelname)s %(name)s %(message)s %(correlation_id)s"
EMAIL_QUERY = re.compile(r"(?i)(email=)[^&\s\"']*")
EMAIL_MASK = r"\1***"

# What a line logged outside any request or task with an id shows for it, in console and JSON
# lines alike: the "no value" of common access-log formats, where Python's None would read as an
# id of that name, and JSON null would make one field two types for log queries.
NO_CORRELATION_ID = "-"

# Tasks whose first argument (or ``subscription_id``) is the subscription worked on.
SUBSCRIPTION_TASKS = frozenset({"klaviyo_sync.tasks.push_subscription"})

subscription_id_var: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "log_subscription_id", default=None
)
# Klaviyo names each error it answers with an id (JSON:API ``errors[].id``; it documents no
# request id header): the one to quote to Klaviyo's support.
klaviyo_error_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "log_klaviyo_error_id", default=None
)
KLAVIYO_ERROR_IDS_LOGGED = 5


def klaviyo_answer_note(response: Any) -> None:
    """Remember the ids of the errors in Klaviyo's answer (a ``requests.Response``) for the log
    lines that follow in this thread or task; a successful answer forgets them."""
    ids: list[str] = []
    if response.status_code >= 400:
        try:
            errors = response.json().get("errors") or []
        except (ValueError, AttributeError):
            errors = []
        ids = [str(e["id"]) for e in errors if isinstance(e, dict) and e.get("id")]
    klaviyo_error_id_var.set(",".join(ids[:KLAVIYO_ERROR_IDS_LOGGED]) or None)


class CorrelationId(logging.Filter):
    """Adds ``correlation_id``: the id of the request or task at hand (django-guid's context), or
    ``NO_CORRELATION_ID`` when there is none. django-guid's own filter writes None there."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.correlation_id = guid.get() or NO_CORRELATION_ID
        return True


class EmailQueryMask(logging.Filter):
    """Masks ``email=<address>`` in the message (runserver's and gunicorn's access lines too)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "email=" in message.lower():
            record.msg, record.args = EMAIL_QUERY.sub(EMAIL_MASK, message), None
        return True


class SubscriptionId(logging.Filter):
    """Adds ``subscription_id`` to records logged while a task works on a subscription, and
    ``klaviyo_error_id`` to those logged after Klaviyo answered with an error."""

    def filter(self, record: logging.LogRecord) -> bool:
        subscription_id = subscription_id_var.get()
        if subscription_id is not None and not hasattr(record, "subscription_id"):
            record.subscription_id = subscription_id
        error_id = klaviyo_error_id_var.get()
        if error_id is not None and not hasattr(record, "klaviyo_error_id"):
            record.klaviyo_error_id = error_id
        return True


@task_prerun.connect
def _subscription_task_started(
    task: Any = None, args: Any = None, kwargs: Any = None, **_: Any
) -> None:
    klaviyo_error_id_var.set(None)
    if getattr(task, "name", None) in SUBSCRIPTION_TASKS:
        value = (kwargs or {}).get("subscription_id") or (args[0] if args else None)
        subscription_id_var.set(int(value) if value is not None else None)


@task_postrun.connect
def _subscription_task_finished(**_: Any) -> None:
    subscription_id_var.set(None)
    klaviyo_error_id_var.set(None)


def logging_config(*, log_format: str, level: str) -> dict[str, Any]:
    """The ``LOGGING`` dict for ``LOG_FORMAT`` ``json`` or ``console`` (anything else: console).

    One handler on the root logger (stderr), the filters above on it. Django's request logger
    logs each 4xx and 5xx once (DRF does not log them itself); Celery keeps to this
    configuration (django-guid's ``use_django_logging``).
    """
    formatter: dict[str, Any]
    if log_format == "json":
        formatter = {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": JSON_FIELDS,
            "rename_fields": {"levelname": "level", "name": "logger"},
            "timestamp": "time",  # ISO 8601, UTC
            # django.request's records carry the request, whose text has the query string.
            "reserved_attrs": [*RESERVED_ATTRS, "request", "taskName"],
        }
    else:
        formatter = {"format": CONSOLE_FORMAT}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "correlation_id": {"()": "operations.logs.CorrelationId"},
            "subscription_id": {"()": "operations.logs.SubscriptionId"},
            "email_mask": {"()": "operations.logs.EmailQueryMask"},
        },
        "formatters": {"main": formatter},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "main",
                "filters": ["correlation_id", "subscription_id", "email_mask"],
            }
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # runserver's access lines: Django gives them a handler of their own, without the
            # mask; here they take ours.
            "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
            # Each task publish and start would be an INFO line of its own.
            "django_guid": {"level": "WARNING"},
            # gunicorn's own loggers go through the root handler (gunicorn.conf.py).
            "gunicorn.error": {"level": "INFO", "handlers": [], "propagate": True},
            "gunicorn.access": {"level": "INFO", "handlers": [], "propagate": True},
        },
    }
