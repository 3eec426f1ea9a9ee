"""The project package.

Every entry point imports this package first (``gunicorn config.wsgi``, ``celery -A config``,
``manage.py``), so the settings default is decided here, once, before the Celery app reads it:
production. Development and the demo ask for ``config.settings.local`` explicitly
(``scripts/demo.py`` does), so no process falls into DEBUG settings by accident.
"""

import os

DEFAULT_SETTINGS_MODULE = "config.settings.production"

os.environ.setdefault("DJANGO_SETTINGS_MODULE", DEFAULT_SETTINGS_MODULE)

from .celery_app import app as celery_app  # noqa: E402

__all__ = ("DEFAULT_SETTINGS_MODULE", "celery_app")
