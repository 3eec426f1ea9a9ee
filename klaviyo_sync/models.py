"""The Klaviyo integration's settings and sync state."""

from django.core.exceptions import ValidationError
from django.db import models


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
        if "{display_uri}" not in self.product_url_template:
            raise ValidationError(
                {"product_url_template": "The template must contain {display_uri}."}
            )
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


class SentCatalogObject(models.Model):
    """What Klaviyo was last sent for one catalog object, so unchanged objects are not re-sent.

    ``payload_hash`` covers the attributes last accepted by Klaviyo. For back-in-stock variants
    ``inventory_quantity`` is the stock figure Klaviyo has, kept apart so that a stock push needs
    no payload. ``exists_in_klaviyo`` decides create versus update.
    """

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
            models.UniqueConstraint(fields=["kind", "external_id"], name="klaviyo_sent_unique")
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.external_id}"


class CatalogSyncRun(models.Model):
    """One catalog sync: its progress while it runs and its failures afterwards."""

    full = models.BooleanField(default=True)
    state = models.CharField(
        max_length=10, choices=CatalogSyncState.choices, default=CatalogSyncState.RUNNING
    )
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    calls = models.PositiveIntegerField(default=0)
    failures = models.JSONField(
        default=list, blank=True, help_text="[{externalId, detail}] from Klaviyo, at most 200."
    )
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]
        verbose_name = "catalog sync run"

    def __str__(self) -> str:
        return f"{'full' if self.full else 'incremental'} sync {self.started_at:%Y-%m-%d %H:%M}"


class PendingCatalogChange(models.Model):
    """A display item whose catalog item must be re-sent: the incremental sync's outbox."""

    display_item_id = models.BigIntegerField(unique=True)
    created_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"display item {self.display_item_id}"


class PendingStockChange(models.Model):
    """A size whose stock changed and whose back-in-stock figures must be recomputed."""

    size_id = models.BigIntegerField(unique=True)
    created_at = models.DateTimeField()

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
