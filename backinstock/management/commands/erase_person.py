"""``manage.py erase_person EMAIL [--klaviyo]``: a person's right to erasure."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from backinstock.services import person_erase
from config.api.errors import InvalidInput


class Command(BaseCommand):
    help = (
        "Erase every back-in-stock subscription of an address (matched by its canonical form). "
        "With --klaviyo, also request Klaviyo's deletion of the profile (data-privacy deletion), "
        "which the worker sends. Each erasure is audited in the admin (Back in stock > Erasures)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email")
        parser.add_argument(
            "--klaviyo",
            action="store_true",
            help="also request the deletion of the person's profile in Klaviyo",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            record = person_erase(
                email=options["email"],
                source="command",
                delete_klaviyo_profile=options["klaviyo"],
            )
        except InvalidInput as exc:
            reason = exc.errors["email"].rstrip(".")
            raise CommandError(f"{reason}; nothing erased. Give the address to erase.") from None
        erased = record.subscriptions_deleted
        self.stdout.write(f"erased {erased} subscription{'' if erased == 1 else 's'}")
        if record.klaviyo_deletion_requested:
            self.stdout.write(
                "Klaviyo profile deletion: requested; the worker sends it "
                "(its answer is shown on the erasure in the admin)"
            )
