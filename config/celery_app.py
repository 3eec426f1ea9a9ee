"""The Celery application: ``celery -A config worker --beat -l info``."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("backinstock")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
