"""The Klaviyo integration's settings and sync state."""

import re
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.db import models

from config.api.fields import web_url_problem
from shop.models import COUNT_MAX

DISPLAY_URI_PLACEHOLDER = "{display_uri}"
_CURRENCY = re.compile(r"[A-Z]{3}")


def product_url_template_problem(template: str) -> str | None:
    """Why a product URL template is refused, or None (issue 9.5).

    It must hold ``{display_uri}`` in its path, query or fragment (never in the scheme or host,
    where a display URI could choose the site), and with the placeholder filled in it must be an
    absolute http(s) URL: the URL is a link in the shopper's email.
    """
    if DISPLAY_URI_PLACEHOLDER not in template:
        return f"The template must contain {DISPLAY_URI_PLACEHOLDER}."
    problem = web_url_problem(template.replace(DISPLAY_URI_PLACEHOLDER, "item"))
    if problem:
        return f"The template {problem}, e.g. https://shop.example.com/product/{{display_uri}}."
    parts = urlsplit(template)
    if DISPLAY_URI_PLACEHOLDER in parts.scheme + parts.netloc:
        return f"{DISPLAY_URI_PLACEHOLDER} must be in the URL's path, not in its host."
    return None


class CatalogSyncState(models.TextChoices):
    NEVER = "never", "never run"
    RUNNING = "running", "running"
    COMPLETED = "completed", "completed"
    FAILED = "failed", "failed"


class IntegrationSettings(models.Model):
    """The one settings record of the Klaviyo integration (always pk 1).

    The API key is not stored here: it comes from ``KLAVIYO_API_KEY`` and is shown only as present
    or absent.
    """

    SINGLETON_PK = 1

    id = models.PositiveSmallIntegerField(primary_key=True, default=SINGLETON_PK, editable=False)
    catalog_sync_enabled = models.BooleanField(
        default=False, help_text="Keep Klaviyo's catalog in step with the shop."
    )
    back_in_stock_enabled = models.BooleanField(
        default=False,
        help_text="Accept back-in-stock subscriptions. Needs a completed full catalog sync.",
    )
    minimum_stock_level = models.PositiveIntegerField(
        default=10,
        help_text="Klaviyo is told a size is in stock only from this many available units on.",
    )
    product_url_template = models.CharField(
        max_length=500,
        default="https://shop.example.com/product/{display_uri}",
        help_text="The product page URL; {display_uri} is replaced by the display item's URI.",
    )
    base_currency = models.CharField(
        max_length=3, default="USD", help_text="Currency of the catalog items' price in Klaviyo."
    )
    catalog_sync_state = models.CharField(
        max_length=10, choices=CatalogSyncState.choices, default=CatalogSyncState.NEVER
    )
    first_full_sync_completed_at = models.DateTimeField(
        null=True, blank=True, help_text="When a full catalog sync first completed."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "Klaviyo integration"
        verbose_name_plural = "Klaviyo integration"
        constraints = [
            models.CheckConstraint(condition=models.Q(id=1), name="klaviyo_settings_singleton"),
        ]

    def __str__(self) -> str:
        return "Klaviyo integration"

    def clean(self) -> None:
        errors: dict[str, str] = {}
        template_problem = product_url_template_problem(self.product_url_template)
        if template_problem:
            errors["product_url_template"] = template_problem
        # The column's range on PostgreSQL, also on SQLite (which would store more), so that a
        # setting that works in the demo works in production.
        if isinstance(self.minimum_stock_level, int) and self.minimum_stock_level > COUNT_MAX:
            errors["minimum_stock_level"] = f"The minimum must be at most {COUNT_MAX}."
        if not (isinstance(self.base_currency, str) and _CURRENCY.fullmatch(self.base_currency)):
            errors["base_currency"] = "The currency must be 3 upper-case letters (ISO 4217)."
        if errors:
            raise ValidationError(errors)
        self._clean_base_currency()
        if self.back_in_stock_enabled and self.first_full_sync_completed_at is None:
            raise ValidationError(
                {
                    "back_in_stock_enabled": (
                        "Back in stock can be switched on only after the first full catalog sync "
                        "has completed: switch catalog sync on and wait for it."
                    )
                }
            )

    def _clean_base_currency(self) -> None:
        """A new base currency must be one a pricelist has: the catalog items' price in Klaviyo
        is read from that pricelist (CONTRACT §8), and Klaviyo requires a price.

        Checked when the currency changes, so that a shop whose catalog was imported after the
        default was set is told when it first chooses, not on every other change.
        """
        from shop.models import Pricelist

        stored = (
            IntegrationSettings.objects.filter(pk=self.pk)
            .values_list("base_currency", flat=True)
            .first()
        )
        if self.base_currency == stored:
            return
        currencies = sorted(set(Pricelist.objects.values_list("currency", flat=True)))
        if currencies and self.base_currency not in currencies:
            raise ValidationError(
                {
                    "base_currency": (
                        f"No pricelist is in {self.base_currency}, so catalog items would reach "
                        f"Klaviyo without a price. The pricelists' currencies: "
                        f"{', '.join(currencies)}."
                    )
                }
            )


class CatalogObjectKind(models.TextChoices):
    ITEM = "item", "catalog item"
    VARIANT = "variant", "catalog variant"
    CATEGORY = "category", "catalog category"


class CatalogObjectOwner(models.TextChoices):
    """Which flow owns an object in Klaviyo; neither touches the other's (ARCHITECTURE.md)."""

    CATALOG = "catalog", "catalog sync (the shop's display items)"
    BACK_IN_STOCK = "back_in_stock", "back in stock (virtual items, variants, category)"


class SentCatalogObject(models.Model):
    """What one Klaviyo account was last sent for one catalog object: a cache, not the truth.

    ``account`` is a fingerprint of the Klaviyo key and base URL (``klaviyo_sync.accounts``):
    another account starts from nothing. ``payload_hash`` covers the attributes last accepted by
    Klaviyo. For back-in-stock variants ``inventory_quantity`` is the stock figure Klaviyo has,
    kept apart so that a stock push needs no payload. ``exists_in_klaviyo`` decides create versus
    update; "does not exist" from Klaviyo, or the reconciliation's read-back, clears it.
    """

    account = models.CharField(max_length=32, default="")
    owner = models.CharField(
        max_length=16, choices=CatalogObjectOwner.choices, default=CatalogObjectOwner.CATALOG
    )
    kind = models.CharField(max_length=10, choices=CatalogObjectKind.choices)
    external_id = models.CharField(max_length=120)
    payload_hash = models.CharField(max_length=64, blank=True)
    inventory_quantity = models.IntegerField(null=True, blank=True)
    exists_in_klaviyo = models.BooleanField(default=False)
    last_error = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "object sent to Klaviyo"
        verbose_name_plural = "objects sent to Klaviyo"
        constraints = [
            models.UniqueConstraint(
                fields=["account", "kind", "external_id"], name="klaviyo_sent_unique_per_account"
            )
        ]
        indexes = [models.Index(fields=["account", "owner", "kind"], name="klaviyo_sent_owner")]

    def __str__(self) -> str:
        return f"{self.kind} {self.external_id}"


class CatalogSyncTrigger(models.TextChoices):
    SWITCH = "switch", "catalog sync switched on"
    BUTTON = "button", "the admin's full-sync button"
    COMMAND = "command", "manage.py klaviyo sync-catalog"
    SCHEDULE = "schedule", "the periodic schedule"
    CATALOG_CHANGE = "catalog-change", "a change in the catalog"
    SETTINGS = "settings", "a changed product URL template or base currency"


class CatalogSyncRun(models.Model):
    """One catalog sync: its progress while it runs and its failures afterwards.

    Every display item considered is counted once, by what became of it:
    ``done`` (sent and accepted) + ``unchanged`` + ``failed`` + ``not_sent`` = ``total``.
    """

    full = models.BooleanField(default=True)
    trigger = models.CharField(
        max_length=16, choices=CatalogSyncTrigger.choices, default=CatalogSyncTrigger.COMMAND
    )
    state = models.CharField(
        max_length=10, choices=CatalogSyncState.choices, default=CatalogSyncState.RUNNING
    )
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0, help_text="Sent and accepted by Klaviyo.")
    failed = models.PositiveIntegerField(default=0, help_text="Refused by Klaviyo.")
    unchanged = models.PositiveIntegerField(default=0, help_text="Klaviyo has them as they are.")
    not_sent = models.PositiveIntegerField(
        default=0, help_text="Not sent: the run stopped before reaching them."
    )
    missing_repaired = models.PositiveIntegerField(
        default=0, help_text="Objects Klaviyo had lost, found by reading its catalog back."
    )
    calls = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    account = models.CharField(
        max_length=32,
        blank=True,
        help_text="The Klaviyo account synced: its fingerprint (klaviyo_sync.accounts).",
    )
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]
        verbose_name = "catalog sync run"

    def __str__(self) -> str:
        return f"{'full' if self.full else 'incremental'} sync {self.started_at:%Y-%m-%d %H:%M}"


class CatalogSyncFailure(models.Model):
    """One element of a catalog sync run that Klaviyo refused, with Klaviyo's words."""

    run = models.ForeignKey(CatalogSyncRun, on_delete=models.CASCADE, related_name="failures")
    external_id = models.CharField(max_length=120)
    detail = models.TextField()

    class Meta:
        ordering = ["run", "id"]

    def __str__(self) -> str:
        return f"{self.external_id}: {self.detail}"


class Lease(models.Model):
    """A named claim that every process sees (the database, not one process's memory).

    Used for "only one catalog sync or stock push at a time" and for "a push is already queued"
    markers (``klaviyo_sync.services.leases``).
    """

    name = models.CharField(max_length=100, unique=True)
    holder = models.CharField(max_length=64, blank=True)
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} until {self.expires_at:%H:%M:%S}"


class PendingCatalogChange(models.Model):
    """A display item whose catalog item must be re-sent: the incremental sync's outbox."""

    display_item_id = models.BigIntegerField(unique=True)
    created_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"display item {self.display_item_id}"


class PendingStockChange(models.Model):
    """A size whose stock changed and whose back-in-stock figures must be recomputed."""

    size_id = models.BigIntegerField(unique=True)
    created_at = models.DateTimeField(help_text="The latest change noted (the quiet time's).")
    first_noted_at = models.DateTimeField(
        help_text="The first change noted since the last push (the coalescing window's)."
    )

    def __str__(self) -> str:
        return f"size {self.size_id}"


class Restock(models.Model):
    """Klaviyo was told a back-in-stock variant is available again: when, and who was waiting."""

    variant = models.ForeignKey(
        "backinstock.BackInStockVariant", on_delete=models.CASCADE, related_name="restocks"
    )
    previous_quantity = models.IntegerField(help_text="The figure Klaviyo had before.")
    quantity = models.IntegerField(help_text="The figure Klaviyo was sent.")
    waiting_subscribers = models.PositiveIntegerField(
        help_text="Subscriptions accepted by Klaviyo for this variant at that moment."
    )
    sent_at = models.DateTimeField(help_text="When Klaviyo accepted the new figure.")

    class Meta:
        ordering = ["-sent_at"]
        indexes = [models.Index(fields=["variant", "-sent_at"], name="klaviyo_restock_variant")]

    def __str__(self) -> str:
        return f"{self.variant_id}: {self.previous_quantity} → {self.quantity}"


class ProfileImportJob(models.Model):
    """A profile bulk import job sent to Klaviyo for the ``Language``/``Currency`` of many
    subscribers at once (KLAVIYO.md: up to 10,000 profiles a job, 10/s and 150/min)."""

    account = models.CharField(max_length=32)
    job_id = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, default="queued")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["account", "job_id"], name="klaviyo_profile_job_unique")
        ]

    def __str__(self) -> str:
        return f"profile import {self.job_id} ({self.status})"


class ProfileImportEntry(models.Model):
    """One subscriber's profile in a profile import job, and Klaviyo's error for it if any."""

    job = models.ForeignKey(ProfileImportJob, on_delete=models.CASCADE, related_name="entries")
    subscription = models.ForeignKey(
        "backinstock.Subscription", on_delete=models.CASCADE, related_name="profile_imports"
    )
    error = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"{self.job_id}: subscription {self.subscription_id}"


class PushStep(models.TextChoices):
    BACK_IN_STOCK = "back-in-stock", "back-in-stock subscription"
    PROFILE = "profile", "profile properties"


class PushOutcome(models.TextChoices):
    ACCEPTED = "accepted", "accepted by Klaviyo"
    RETRY = "retry", "failed, to be retried"
    FAILED = "failed", "failed for good"


class PushAttempt(models.Model):
    """One attempt to send a part of a subscription to Klaviyo: the subscription's history.

    Kept when an operator retries a failed subscription, so the page shows every attempt.
    """

    subscription = models.ForeignKey(
        "backinstock.Subscription", on_delete=models.CASCADE, related_name="push_attempts"
    )
    at = models.DateTimeField(auto_now_add=True)
    step = models.CharField(max_length=16, choices=PushStep.choices)
    outcome = models.CharField(max_length=10, choices=PushOutcome.choices)
    error = models.TextField(blank=True, help_text="Klaviyo's words, or what went wrong.")

    class Meta:
        ordering = ["subscription", "at", "id"]

    def __str__(self) -> str:
        return f"{self.subscription_id} {self.step}: {self.outcome}"
