"""Back-in-stock subscriptions and the virtual products and variants they hang on.

Klaviyo keeps one stock figure per variant, but whether a size is in stock depends on where the
parcel goes. So there is one virtual back-in-stock product per (display item, ship-to country,
state) and one variant per size of it, each carrying the availability for that location
(ARCHITECTURE.md).
"""

import hashlib

from django.conf import settings
from django.db import models
from django.utils.crypto import salted_hmac

from shop.models import Country, DisplayItem, Language, Size, State

NO_STATE = "00"


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
    FAILED = "failed", "failed (the reason is on the subscription)"


class Subscription(models.Model):
    """A shopper waiting for one size to come back for one ship-to location.

    A ``pending`` row is the record of work still to do for Klaviyo (the database is the outbox).
    """

    variant = models.ForeignKey(
        BackInStockVariant, on_delete=models.CASCADE, related_name="subscriptions"
    )
    email = models.EmailField(
        max_length=254,
        help_text="The canonical address (backinstock.emails): matched, and sent to Klaviyo.",
    )
    language = models.ForeignKey(Language, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(
        max_length=10, choices=SubscriptionStatus.choices, default=SubscriptionStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0, help_text="Pushes to Klaviyo tried.")
    last_error = models.TextField(blank=True)
    correlation_id = models.CharField(
        max_length=64,
        blank=True,
        help_text="The storefront request's X-Correlation-ID; the push's log lines carry it.",
    )
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
            # One subscription per canonical address and variant, held by the database so that
            # concurrent identical requests cannot create two. The address is canonical before
            # it is stored (backinstock.emails), so the comparison is plain equality: no SQL
            # lower(), whose idea of case differs from Python's outside ASCII. Its index also
            # serves look-ups by address.
            models.UniqueConstraint(
                fields=["email", "variant"], name="backinstock_subscription_email_variant"
            )
        ]
        indexes = [
            models.Index(fields=["status", "updated_at"], name="backinstock_sub_status"),
        ]

    def __str__(self) -> str:
        return f"{self.email} → {self.variant_id and self.variant.external_id}"


ERASURE_HASH_SALT = "backinstock.ErasureRecord.email_hash"


def erasure_email_hash(canonical_email: str) -> str:
    """HMAC-SHA256 (hex) of a canonical address, keyed with ``ERASURE_AUDIT_SECRET``.

    Keyed, so that a copy of the audit table and a list of addresses are not enough to tell who
    asked to be erased; the admin, which holds the secret, finds an erasure by its address.
    """
    return salted_hmac(
        ERASURE_HASH_SALT,
        canonical_email,
        secret=settings.ERASURE_AUDIT_SECRET,
        algorithm="sha256",
    ).hexdigest()


def erasure_email_hash_of_legacy(sha256_hex: str) -> str:
    """The keyed hash that replaced an audit's unsalted SHA-256 (migration 0004)."""
    return erasure_email_hash(f"sha256:{sha256_hex}")


def erasure_email_hashes(canonical_email: str) -> list[str]:
    """The hashes an erasure of this address may be audited under: today's, and a re-keyed one.

    Before migration 0004 the audit kept a SHA-256 of the lower-cased address, which for every
    address valid today is its canonical form.
    """
    legacy = hashlib.sha256(canonical_email.encode()).hexdigest()
    return [erasure_email_hash(canonical_email), erasure_email_hash_of_legacy(legacy)]


class ErasureRecord(models.Model):
    """The audit of one erasure of a person's subscriptions (Shop API, command or admin).

    The address itself is gone with its subscriptions; a keyed hash of its canonical form
    (``erasure_email_hash``) lets an operator confirm a request was carried out without keeping it.
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


class ProfileDeletionRequest(models.Model):
    """An erasure's request that Klaviyo delete the person's profile, not yet sent (the outbox).

    The only place an erased address is still kept in clear, and only until the worker has handed
    it to Klaviyo's data-privacy deletion: the row is then deleted and the answer written on the
    erasure record. Stored with the erasure, so the request survives a broker or Klaviyo outage.
    """

    erasure = models.OneToOneField(
        ErasureRecord, on_delete=models.CASCADE, related_name="profile_deletion_request"
    )
    email = models.EmailField(max_length=254, help_text="The canonical address to delete.")
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]
        verbose_name = "Klaviyo profile deletion request"

    def __str__(self) -> str:
        return f"profile deletion for erasure {self.erasure_id}"
