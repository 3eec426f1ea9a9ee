"""``manage.py erase_person EMAIL [--klaviyo]``: a person's right to erasure."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from klaviyo_sync.client import KlaviyoError
from klaviyo_sync.services.privacy import person_erase


class Command(BaseCommand):
    help = (
        "Erase every back-in-stock subscription of an address (matched case-insensitively). "
        "With --klaviyo, also ask Klaviyo to delete the profile (data-privacy deletion). "
        "Each erasure is audited in the admin (Back in stock > Erasures)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email")
        parser.add_argument(
            "--klaviyo",
            action="store_true",
            help="also delete the person's profile in Klaviyo",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            record = person_erase(
                email=options["email"],
                source="command",
                delete_klaviyo_profile=options["klaviyo"],
            )
        except KlaviyoError as exc:
            raise CommandError(
                f"subscriptions erased, but Klaviyo refused the profile deletion: {exc}"
            ) from exc
        erased = record.subscriptions_deleted
        self.stdout.write(f"erased {erased} subscription{'' if erased == 1 else 's'}")
        if record.klaviyo_deletion_requested:
            self.stdout.write(f"Klaviyo profile deletion: {record.klaviyo_deletion_result}")
