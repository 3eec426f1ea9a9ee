"""Admin pages for back-in-stock subscriptions and their virtual products and variants.

Everything here is created by the subscribe API and the worker, so the pages are for looking and
for a few operator actions: retrying failed subscriptions, and erasing a person (with or without
their Klaviyo profile). Deleting subscriptions here is an erasure too: audited, through the same
service as the Shop API and ``erase_person``.
"""

from typing import Any

from django.contrib import admin, messages
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.text import Truncator

from backinstock.emails import EmailInvalid, email_canonical
from backinstock.models import (
    BackInStockProduct,
    BackInStockVariant,
    ErasureRecord,
    Subscription,
    erasure_email_hashes,
)
from backinstock.services import persons_erase, subscriptions_delete, subscriptions_retry

LAST_ERROR_SHORT_LENGTH = 80
KLAVIYO_KEEPS_ITS_COPY = (
    "Klaviyo keeps its copy of these back-in-stock subscriptions (it has no way to delete one); "
    'to remove it, use "Erase this address and request Klaviyo\'s profile deletion".'
)


class _ReadOnlyAdmin(admin.ModelAdmin):
    """Every field read-only and no adding: these rows come from the API and the worker."""

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return tuple(field.name for field in self.model._meta.fields)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(BackInStockProduct)
class BackInStockProductAdmin(_ReadOnlyAdmin):
    list_display = ("external_id", "display_item", "country", "state", "variant_count")
    search_fields = ("external_id",)
    list_filter = ("country",)
    list_select_related = ("display_item", "country", "state")
    ordering = ("external_id",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[BackInStockProduct]:
        return super().get_queryset(request).annotate(variant_count=Count("variants"))

    @admin.display(description="variants", ordering="variant_count")
    def variant_count(self, obj: BackInStockProduct) -> int:
        return int(obj.variant_count)  # type: ignore[attr-defined]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Klaviyo holds a copy; removing only ours would leave it orphaned there.
        return False


@admin.register(BackInStockVariant)
class BackInStockVariantAdmin(_ReadOnlyAdmin):
    list_display = ("external_id", "size_sku", "subscriber_count")
    search_fields = ("external_id", "size__sku")
    list_filter = ("product__country",)
    list_select_related = ("size",)
    ordering = ("external_id",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[BackInStockVariant]:
        return super().get_queryset(request).annotate(subscriber_count=Count("subscriptions"))

    @admin.display(description="size SKU", ordering="size__sku")
    def size_sku(self, obj: BackInStockVariant) -> str:
        return obj.size.sku

    @admin.display(description="subscribers", ordering="subscriber_count")
    def subscriber_count(self, obj: BackInStockVariant) -> int:
        return int(obj.subscriber_count)  # type: ignore[attr-defined]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Subscription)
class SubscriptionAdmin(_ReadOnlyAdmin):
    list_display: tuple[str, ...] = (
        "email",
        "variant_external_id",
        "language",
        "status",
        "attempts",
        "created_at",
        "subscribed_at",
        "last_error_short",
    )
    search_fields = ("email", "variant__external_id")
    list_filter = ("status", "language", "variant__product__country")
    list_select_related = ("variant", "language")
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    actions = ("retry_failed", "erase_addresses", "erase_addresses_and_klaviyo_profiles")

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Subscription], search_term: str
    ) -> tuple[QuerySet[Subscription], bool]:
        """Also finds an address typed in any spelling of it (``bücher``, the Kelvin sign)."""
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        try:
            canonical = email_canonical(search_term, lookup=True)
        except EmailInvalid:
            return results, may_have_duplicates
        return results | queryset.filter(email=canonical), may_have_duplicates

    @admin.display(description="variant", ordering="variant__external_id")
    def variant_external_id(self, obj: Subscription) -> str:
        return obj.variant.external_id

    @admin.display(description="last error")
    def last_error_short(self, obj: Subscription) -> str:
        return Truncator(obj.last_error).chars(LAST_ERROR_SHORT_LENGTH)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Without an object this is the permission to run the retry action on the list; a
        # subscription's own page is view-only (nothing on it may be edited).
        return obj is None and super().has_change_permission(request)

    @admin.action(description="Retry selected failed subscriptions", permissions=["change"])
    def retry_failed(
        self, request: HttpRequest, queryset: QuerySet[Subscription]
    ) -> HttpResponse | None:
        selected = list(queryset.values_list("id", flat=True))
        retried = subscriptions_retry(subscription_ids=selected)
        self.message_user(
            request,
            f"{retried} failed subscription(s) set back to pending; the worker will push them.",
            messages.SUCCESS,
        )
        if skipped := len(selected) - retried:
            self.message_user(
                request,
                f"{skipped} selected subscription(s) were not failed and were left as they are.",
                messages.WARNING,
            )
        return None

    @admin.action(
        description="Erase this address (every subscription of it)", permissions=["delete"]
    )
    def erase_addresses(
        self, request: HttpRequest, queryset: QuerySet[Subscription]
    ) -> HttpResponse | None:
        self._erase(request, queryset, delete_klaviyo_profile=False)
        return None

    @admin.action(
        description="Erase this address and request Klaviyo's profile deletion",
        permissions=["delete"],
    )
    def erase_addresses_and_klaviyo_profiles(
        self, request: HttpRequest, queryset: QuerySet[Subscription]
    ) -> HttpResponse | None:
        self._erase(request, queryset, delete_klaviyo_profile=True)
        return None

    def _erase(
        self,
        request: HttpRequest,
        queryset: QuerySet[Subscription],
        *,
        delete_klaviyo_profile: bool,
    ) -> None:
        records = persons_erase(
            subscription_ids=list(queryset.values_list("id", flat=True)),
            source="admin",
            delete_klaviyo_profile=delete_klaviyo_profile,
        )
        deleted = sum(record.subscriptions_deleted for record in records)
        self.message_user(
            request,
            f"Erased {len(records)} address(es), {deleted} subscription(s); audited in Erasures.",
            messages.SUCCESS,
        )
        if delete_klaviyo_profile:
            self.message_user(
                request,
                "Klaviyo's profile deletion is requested; the worker sends it and the answer is "
                "shown on each erasure.",
                messages.INFO,
            )
        else:
            self.message_user(request, KLAVIYO_KEEPS_ITS_COPY, messages.WARNING)

    def delete_model(self, request: HttpRequest, obj: Subscription) -> None:
        subscriptions_delete(subscription_ids=[obj.id], source="admin")
        self.message_user(request, KLAVIYO_KEEPS_ITS_COPY, messages.WARNING)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Subscription]) -> None:
        subscriptions_delete(
            subscription_ids=list(queryset.values_list("id", flat=True)), source="admin"
        )
        self.message_user(request, KLAVIYO_KEEPS_ITS_COPY, messages.WARNING)


@admin.register(ErasureRecord)
class ErasureRecordAdmin(_ReadOnlyAdmin):
    """The audit of erasures: when, how many, who asked, and what Klaviyo answered."""

    list_display = (
        "created_at",
        "source",
        "subscriptions_deleted",
        "klaviyo_deletion_requested",
        "klaviyo_deletion_result",
    )
    list_filter = ("source", "klaviyo_deletion_requested")
    search_fields = ("email_hash",)
    search_help_text = "Type the erased address: it is matched by its keyed hash."
    date_hierarchy = "created_at"
    ordering = ("-created_at",)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[ErasureRecord], search_term: str
    ) -> tuple[QuerySet[ErasureRecord], bool]:
        """An address finds its erasures (by ``erasure_email_hashes``); anything else, a hash."""
        if not search_term.strip():
            return queryset, False
        try:
            canonical = email_canonical(search_term, lookup=True)
        except EmailInvalid:
            return queryset.filter(email_hash=search_term.strip().lower()), False
        return queryset.filter(email_hash__in=erasure_email_hashes(canonical)), False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
