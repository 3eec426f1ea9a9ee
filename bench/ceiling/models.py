from typing import ClassVar

from django.db import models


class Hit(models.Model):
    """One row per request to the ceiling view."""

    email = models.CharField(max_length=254)
    created_at = models.DateTimeField(auto_now_add=True)

    # Declared, because the type checker's settings do not install this app.
    objects: ClassVar["models.Manager[Hit]"] = models.Manager()

    def __str__(self) -> str:
        return self.email
