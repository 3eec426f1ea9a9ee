from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Create the demo's admin user (admin / admin). Refused unless DEBUG is on."

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError("demo_admin is for the local demo only (DJANGO_DEBUG is off).")
        user_model = get_user_model()
        if user_model.objects.filter(username="admin").exists():
            self.stdout.write("demo admin user exists")
            return
        user_model.objects.create_superuser("admin", "admin@example.com", "admin")
        self.stdout.write("created demo admin user: admin / admin")
