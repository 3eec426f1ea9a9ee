"""``manage.py klaviyo status|configure|sync-catalog|check`` (CONTRACT §6)."""

import argparse
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from config.api.fields import ascii_integer_argument
from klaviyo_sync.client import KlaviyoError
from klaviyo_sync.models import CatalogSyncRun, CatalogSyncState, CatalogSyncTrigger
from klaviyo_sync.selectors import integration_settings_get, integration_status
from klaviyo_sync.services import integration_settings_update
from klaviyo_sync.services.catalog import CatalogSyncBusy, catalog_sync_run
from klaviyo_sync.services.connection import klaviyo_connection_check
from klaviyo_sync.tasks import sync_catalog

NEVER_FULLY_SYNCED = (
    "The configured Klaviyo account has never had a full catalog sync: run `manage.py klaviyo "
    "sync-catalog --full --wait` (back in stock needs one)."
)


def _count(number: int, noun: str) -> str:
    """``1 bulk job call``, ``2 bulk job calls``."""
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _on_off(value: str) -> bool:
    if value not in {"on", "off"}:
        raise argparse.ArgumentTypeError(f"expected on or off, not {value!r}")
    return value == "on"


@contextmanager
def _quiet_unless(*, verbose: bool) -> Iterator[None]:
    """The integration's INFO lines (each job polled, each retry) while the progress bar shows
    the same; warnings and errors still print. ``-v 2`` keeps them all."""
    logger = logging.getLogger("klaviyo_sync")
    level = logger.level
    if not verbose:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


class Command(BaseCommand):
    help = (
        "The Klaviyo integration: show its status, change its settings, sync the catalog, check "
        "the connection."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("status", help="print the integration's status as JSON")
        configure = sub.add_parser("configure", help="change the integration's settings")
        configure.add_argument("--catalog-sync", type=_on_off, metavar="on|off")
        configure.add_argument("--back-in-stock", type=_on_off, metavar="on|off")
        configure.add_argument("--minimum-stock-level", type=ascii_integer_argument, metavar="N")
        configure.add_argument("--product-url-template", metavar="T")
        configure.add_argument("--base-currency", metavar="C")
        sync = sub.add_parser("sync-catalog", help="queue (or with --wait, run) a catalog sync")
        sync.add_argument("--full", action="store_true", help="every display item, not changes")
        sync.add_argument("--wait", action="store_true", help="run here, with a progress bar")
        sub.add_parser("check", help="check the API key and the connection with one cheap read")

    def handle(self, *args: Any, **options: Any) -> None:
        self.verbosity = options["verbosity"]
        action = options["action"]
        if action == "status":
            status = integration_status()
            self.stdout.write(json.dumps(status, indent=2))
            if status["klaviyo"]["fullCatalogSync"] == "never":  # type: ignore[index]
                self.stderr.write(NEVER_FULLY_SYNCED)
        elif action == "configure":
            self._configure(options)
        elif action == "check":
            result = klaviyo_connection_check()
            if not result.ok:
                raise CommandError(result.message)
            self.stdout.write(result.message)
        else:
            self._sync(full=options["full"], wait=options["wait"])

    def _configure(self, options: dict[str, Any]) -> None:
        if options["minimum_stock_level"] is not None and options["minimum_stock_level"] < 0:
            raise CommandError("--minimum-stock-level must be zero or more")
        try:
            integration_settings_update(
                record=integration_settings_get(),
                catalog_sync_enabled=options["catalog_sync"],
                back_in_stock_enabled=options["back_in_stock"],
                minimum_stock_level=options["minimum_stock_level"],
                product_url_template=options["product_url_template"],
                base_currency=options["base_currency"],
            )
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        self.stdout.write(json.dumps(integration_status(), indent=2))

    def _sync(self, *, full: bool, wait: bool) -> None:
        if not wait:
            sync_catalog.delay(full=full, trigger=CatalogSyncTrigger.COMMAND)
            self.stdout.write(f"queued {'a full' if full else 'an incremental'} catalog sync")
            return
        bar = tqdm(total=0, unit="item", desc="catalog sync", disable=None)

        def progress(run: CatalogSyncRun) -> None:
            bar.total = run.total
            bar.n = run.done + run.failed + run.unchanged
            bar.refresh()

        try:
            with _quiet_unless(verbose=self.verbosity >= 2):
                run = catalog_sync_run(
                    full=full, trigger=CatalogSyncTrigger.COMMAND, progress=progress
                )
        except CatalogSyncBusy as exc:
            raise CommandError(str(exc)) from exc
        except KlaviyoError as exc:
            raise CommandError(f"catalog sync failed: {exc}") from exc
        finally:
            bar.close()
        repaired = (
            f", {run.missing_repaired} lost in Klaviyo and re-sent" if run.missing_repaired else ""
        )
        self.stdout.write(
            f"catalog sync {run.state}: {run.total} items: {run.done} sent, {run.unchanged} "
            f"unchanged, {run.failed} failed, {run.not_sent} not sent{repaired}; "
            f"{_count(run.calls, 'call')} to Klaviyo"
        )
        for failure in run.failures.all()[:20]:
            self.stderr.write(f"  {failure.external_id}: {failure.detail}")
        if run.failed > 20:
            self.stderr.write(f"  ... and {run.failed - 20} more (see the admin)")
        if run.state != CatalogSyncState.COMPLETED:
            raise CommandError("the catalog sync did not complete without failures")
