from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

# The only database an admin/admin account may be created in: the demo's own SQLite file.
DEMO_DATABASE = Path(settings.BASE_DIR) / "db.sqlite3"


def is_demo_database() -> bool:
    """True when the default database is the demo's SQLite file (``db.sqlite3`` in the project)."""
    return (
        connection.vendor == "sqlite"
        and Path(str(connection.settings_dict["NAME"])).resolve() == DEMO_DATABASE.resolve()
    )


class Command(BaseCommand):
    help = "Create the demo's admin user (admin / admin) in the demo's SQLite database only."

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG or not is_demo_database():
            raise CommandError(
                f"demo_admin is for the local demo only: it needs DEBUG on and the demo's "
                f"SQLite database ({DEMO_DATABASE.name}); this database is "
                f"{connection.vendor} {connection.settings_dict['NAME']}."
            )
        user_model = get_user_model()
        if user_model.objects.filter(username="admin").exists():
            self.stdout.write("demo admin user exists")
            return
        user_model.objects.create_superuser("admin", "admin@example.com", "admin")
        self.stdout.write("created demo admin user: admin / admin")
