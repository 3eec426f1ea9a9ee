"""Back-in-stock subscriptions and the virtual products and variants they hang on.

Klaviyo keeps one stock figure per variant, but whether a size is in stock depends on where the
parcel goes. So there is one virtual back-in-stock product per (display item, ship-to country,
state) and one variant per size of it, each carrying the availability for that location
(ARCHITECTURE.md).
"""

import hashlib

from django.db import models
from django.db.models.functions import Lower

from shop.models import Country, DisplayItem, Language, Size, State

NO_STATE = "00"

# ``email__lower=...`` filters use the functional index below instead of UPPER(...) scans.
models.EmailField.register_lookup(Lower)


def product_external_id(*, display_item_id: int, country_code: str, state_code: str | None) -> str:
    """``12366_SE_00`` or ``12366_US_NY``: display item, ship-to country, state or ``00``."""
    return f"{display_item_id}_{country_code}_{state_code or NO_STATE}"


def variant_external_id(*, product_external_id: str, size_id: int) -> str:
    """``12366_SE_00_23400``: the back-in-stock product's id and the size."""
    return f"{product_external_id}_{size_id}"


class BackInStockProduct(models.Model):
    external_id = models.CharField(max_length=100, unique=True)
    display_item = models.ForeignKey(
        DisplayItem, on_delete=models.CASCADE, related_name="back_in_stock_products"
    )
    country = models.ForeignKey(Country, on_delete=models.PROTECT, related_name="+")
    state = models.ForeignKey(
        State, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["external_id"]
        verbose_name = "back-in-stock product"

    def __str__(self) -> str:
        return self.external_id


class BackInStockVariant(models.Model):
    external_id = models.CharField(max_length=120, unique=True)
    product = models.ForeignKey(
        BackInStockProduct, on_delete=models.CASCADE, related_name="variants"
    )
    size = models.ForeignKey(Size, on_delete=models.CASCADE, related_name="back_in_stock_variants")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["external_id"]
        verbose_name = "back-in-stock variant"
        constraints = [
            models.UniqueConstraint(fields=["product", "size"], name="backinstock_variant_unique")
        ]

    def __str__(self) -> str:
        return self.external_id


class SubscriptionStatus(models.TextChoices):
    PENDING = "pending", "pending (not yet in Klaviyo)"
    SUBSCRIBED = "subscribed", "subscribed (accepted by Klaviyo)"
    FAILED = "failed", "failed (gave up after retries)"


class Subscription(models.Model):
    """A shopper waiting for one size to come back for one ship-to location.

    A ``pending`` row is the record of work still to do for Klaviyo (the database is the outbox).
    """

    variant = models.ForeignKey(
        BackInStockVariant, on_delete=models.CASCADE, related_name="subscriptions"
    )
    email = models.EmailField(max_length=254, help_text="Trimmed, with the domain lower-cased.")
    language = models.ForeignKey(Language, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(
        max_length=10, choices=SubscriptionStatus.choices, default=SubscriptionStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0, help_text="Pushes to Klaviyo tried.")
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Push progress, so that a push run twice sends each part once (klaviyo_sync.services).
    push_claimed_until = models.DateTimeField(
        null=True, blank=True, help_text="A worker is pushing this subscription until then."
    )
    subscription_sent_at = models.DateTimeField(
        null=True, blank=True, help_text="When Klaviyo accepted the back-in-stock subscription."
    )
    profile_sent_at = models.DateTimeField(
        null=True, blank=True, help_text="When Klaviyo accepted the profile's properties."
    )
    subscribed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # One subscription per address (case-insensitive) and variant, held by the database
            # so that concurrent identical requests cannot create two.
            models.UniqueConstraint(
                Lower("email"), "variant", name="backinstock_subscription_unique_email_variant"
            )
        ]
        indexes = [
            models.Index(Lower("email"), name="backinstock_sub_email_lower"),
            models.Index(fields=["status", "updated_at"], name="backinstock_sub_status"),
        ]

    def __str__(self) -> str:
        return f"{self.email} → {self.variant_id and self.variant.external_id}"


class ErasureRecord(models.Model):
    """The audit of one erasure of a person's subscriptions (Shop API, command or admin).

    The address itself is gone with its subscriptions; a SHA-256 of its matching form (trimmed,
    lower-cased) lets an operator confirm a request was carried out without keeping it.
    """

    email_hash = models.CharField(max_length=64, db_index=True)
    subscriptions_deleted = models.PositiveIntegerField()
    source = models.CharField(max_length=20, help_text="shop-api, command or admin")
    klaviyo_deletion_requested = models.BooleanField(default=False)
    klaviyo_deletion_result = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "erasure"

    def __str__(self) -> str:
        return f"erasure {self.created_at:%Y-%m-%d %H:%M} ({self.source})"

    @staticmethod
    def hash_of(match_key: str) -> str:
        return hashlib.sha256(match_key.encode()).hexdigest()
