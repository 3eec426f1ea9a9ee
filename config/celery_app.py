"""The Celery application: ``celery -A config worker --beat -l info``.

The settings module defaults to production in ``config/__init__.py``, which is always imported
before this module.
"""

from celery import Celery

app = Celery("backinstock")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
