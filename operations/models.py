"""What operators watch: the processes' heartbeats."""

from django.db import models


class ProcessKind(models.TextChoices):
    WORKER = "worker", "Celery worker"
    SCHEDULER = "scheduler", "Celery beat (scheduler)"


class Heartbeat(models.Model):
    """The last sign of life of one worker or scheduler process, kept in the database so that
    every process (the web's readiness and admin, ``manage.py health``) sees it, in the demo
    (which has no Redis) too. One row per process name (``worker@host``, ``scheduler@host``),
    updated in place every ``HEARTBEAT_SECONDS``."""

    kind = models.CharField(max_length=10, choices=ProcessKind.choices)
    name = models.CharField(max_length=200, help_text="host and process, e.g. worker@web-1")
    beat_at = models.DateTimeField()
    started_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "name"], name="operations_heartbeat_unique")
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.name}"
