"""Admin pages for back-in-stock subscriptions and their virtual products and variants.

Everything here is created by the subscribe API and the worker, so the pages are for looking and
for a few operator actions: retrying failed subscriptions, and erasing a person (with or without
their Klaviyo profile). Deleting subscriptions here is an erasure too: audited, through the same
service as the Shop API and ``erase_person``. Every list names a row in the shop's
words (product, variant, size, market, ship-to location, the storefront item id ``12366-23400``)
beside the virtual ids Klaviyo knows. What other apps add to these pages comes in through
``backinstock.admin_hooks``.
"""

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.options import InlineModelAdmin
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.text import Truncator
from django.utils.translation import ngettext

from backinstock.admin_hooks import additions
from backinstock.emails import EmailInvalid, email_canonical
from backinstock.models import (
    BackInStockProduct,
    BackInStockVariant,
    ErasureRecord,
    Subscription,
    SubscriptionStatus,
    erasure_email_hashes,
)
from backinstock.services import persons_erase, subscriptions_delete, subscriptions_retry
from shop.models import Country, Market, State
from shop.selectors import BIGINT_MAX

LAST_ERROR_SHORT_LENGTH = 60
KLAVIYO_KEEPS_ITS_COPY = (
    "Klaviyo keeps its copy of these back-in-stock subscriptions (it has no way to delete one); "
    'to remove it, use "Erase this address and request Klaviyo\'s profile deletion".'
)
# A variant's or product's page lists this many waiting shoppers and links to the rest.
SHOPPERS_WAITING_SHOWN = 50
# ``12366-23400``: how a storefront names a size of a display item (CONTRACT §3).
STOREFRONT_ITEM_ID = re.compile(r"^\s*(\d+)-(\d+)\s*$")
WAITING = (SubscriptionStatus.PENDING, SubscriptionStatus.SUBSCRIBED)


def _follow(obj: Any, path: str) -> Any:
    for name in filter(None, path.split("__")):
        obj = getattr(obj, name)
    return obj


def product_columns(*, path: str) -> tuple[Callable[[Any], str], ...]:
    """Product, variant, market and ship-to columns for rows reached by ``path`` from a
    back-in-stock product (``""`` for the product itself, ``"variant__product__"`` from a
    subscription)."""

    def of(obj: Any) -> BackInStockProduct:
        return _follow(obj, path)

    @admin.display(description="product", ordering=f"{path}display_item__variant__product__name")
    def product_name(obj: Any) -> str:
        return of(obj).display_item.variant.product.name

    @admin.display(description="variant", ordering=f"{path}display_item__variant__name")
    def variant_name(obj: Any) -> str:
        return of(obj).display_item.variant.name

    @admin.display(description="market", ordering=f"{path}country__market__name")
    def market(obj: Any) -> str:
        market = of(obj).country.market
        return market.name if market else "-"

    @admin.display(description="ship-to", ordering=f"{path}country__code")
    def ship_to(obj: Any) -> str:
        product = of(obj)
        if product.state is None:
            return product.country.name
        return f"{product.country.name}, {product.state.name}"

    return product_name, variant_name, market, ship_to


def size_columns(*, path: str) -> tuple[Callable[[Any], str], ...]:
    """Size and storefront item id columns for rows reached by ``path`` from a back-in-stock
    variant (``""`` for the variant itself, ``"variant__"`` from a subscription)."""

    def of(obj: Any) -> BackInStockVariant:
        return _follow(obj, path)

    @admin.display(description="size", ordering=f"{path}size__name")
    def size_name(obj: Any) -> str:
        return of(obj).size.name

    @admin.display(description="storefront item", ordering=f"{path}product__display_item_id")
    def storefront_item(obj: Any) -> str:
        variant = of(obj)
        return f"{variant.product.display_item_id}-{variant.size_id}"

    return size_name, storefront_item


def item_column(*, path: str) -> Callable[[Any], SafeString]:
    """One compact column naming what a shopper waits for, for rows reached by ``path`` from a
    back-in-stock variant: ``Hoodie, Black, M`` over the storefront item id ``12366-23400``.
    Sorted by product name. (Five separate columns do not fit a list at 1440 px.)"""

    @admin.display(
        description="waiting for", ordering=f"{path}product__display_item__variant__product__name"
    )
    def item(obj: Any) -> SafeString:
        variant: BackInStockVariant = _follow(obj, path)
        names = variant.product.display_item.variant
        return format_html(
            '{}, {}, {}<br><span class="quiet">{}-{}</span>',
            names.product.name,
            names.name,
            variant.size.name,
            variant.product.display_item_id,
            variant.size_id,
        )

    return item


def product_select_related(*, path: str) -> tuple[str, ...]:
    """What ``product_columns(path=path)`` reads, for ``list_select_related``."""
    return (f"{path}display_item__variant__product", f"{path}country__market", f"{path}state")


def ship_to_filters(*, path: str) -> tuple[type[admin.SimpleListFilter], ...]:
    """Market, country and state filters that offer only ship-to locations (not every country
    the shop knows), for rows reached by ``path`` from a back-in-stock product."""

    class MarketFilter(admin.SimpleListFilter):
        title = "market"
        parameter_name = "market"

        def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[Any, str]]:
            markets = Market.objects.filter(countries__is_ship_to=True).distinct()
            return [(market.pk, market.name) for market in markets.order_by("name")]

        def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
            if self.value():
                return queryset.filter(**{f"{path}country__market_id": self.value()})
            return queryset

    class CountryFilter(admin.SimpleListFilter):
        title = "ship-to country"
        parameter_name = "country"

        def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[Any, str]]:
            countries = Country.objects.filter(is_ship_to=True).order_by("name")
            return [(country.code, f"{country.name} ({country.code})") for country in countries]

        def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
            if self.value():
                return queryset.filter(**{f"{path}country__code": self.value()})
            return queryset

    class StateFilter(admin.SimpleListFilter):
        title = "ship-to state"
        parameter_name = "state"

        def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[Any, str]]:
            states = State.objects.filter(country__is_ship_to=True).select_related("country")
            return [
                (state.pk, f"{state.name} ({state.country.code}-{state.code})")
                for state in states.order_by("country__code", "code")
            ]

        def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
            if self.value():
                return queryset.filter(**{f"{path}state_id": self.value()})
            return queryset

    return MarketFilter, CountryFilter, StateFilter


class StorefrontItemSearch(admin.ModelAdmin):
    """Search also by the storefront's item id, ``12366-23400`` (display item - size), for rows
    reached by ``storefront_item_path`` from a back-in-stock variant."""

    storefront_item_path = ""

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        match = STOREFRONT_ITEM_ID.match(search_term)
        if match is None:
            return super().get_search_results(request, queryset, search_term)
        path = self.storefront_item_path
        display_item_id, size_id = int(match[1]), int(match[2])
        if max(display_item_id, size_id) > BIGINT_MAX:  # no such id; SQLite cannot even bind it
            return queryset.none(), False
        return (
            queryset.filter(
                **{f"{path}product__display_item_id": display_item_id, f"{path}size_id": size_id}
            ),
            False,
        )


def when_short(moment: datetime | None) -> SafeString:
    """``2026-11-30`` over ``17:56`` in the shop's time zone, or ``-``: a list column that fits."""
    if moment is None:
        return format_html("{}", "-")
    local = timezone.localtime(moment)
    return format_html("{}<br>{}", f"{local:%Y-%m-%d}", f"{local:%H:%M}")


def shoppers_waiting_table(*, subscriptions: QuerySet[Subscription], search: str) -> SafeString:
    """The first waiting shoppers as an HTML table, with a link to all of them in the list."""
    waiting = subscriptions.filter(status__in=WAITING)
    count = waiting.count()
    if count == 0:
        return format_html("<p>{}</p>", "No shopper is waiting.")
    rows = format_html_join(
        "",
        "<tr><td><a href='{}'>{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        (
            (
                reverse("admin:backinstock_subscription_change", args=[sub.pk]),
                sub.email,
                sub.variant.size.name,
                sub.language.code,
                sub.get_status_display(),
                f"{sub.created_at:%Y-%m-%d %H:%M}",
            )
            for sub in waiting.select_related("variant__size", "language").order_by("created_at")[
                :SHOPPERS_WAITING_SHOWN
            ]
        ),
    )
    link = reverse("admin:backinstock_subscription_changelist") + f"?q={search}"
    return format_html(
        "<p><a href='{}'>{} waiting</a> (pending or in Klaviyo), oldest first:</p>"
        "<table><thead><tr><th>address</th><th>size</th><th>language</th><th>status</th>"
        "<th>since</th></tr></thead><tbody>{}</tbody></table>",
        link,
        count,
        rows,
    )


class _ReadOnlyAdmin(admin.ModelAdmin):
    """Every field read-only and no adding: these rows come from the API and the worker."""

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return (*(field.name for field in self.model._meta.fields), *self.readonly_fields)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(BackInStockProduct)
class BackInStockProductAdmin(_ReadOnlyAdmin):
    list_display = (
        "external_id",
        *product_columns(path=""),
        "display_item_id",
        "variant_count",
        "waiting_count",
    )
    search_fields = ("external_id", "display_item__variant__product__name")
    list_filter = ship_to_filters(path="")
    list_select_related = product_select_related(path="")
    ordering = ("external_id",)
    readonly_fields = ("shoppers_waiting",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[BackInStockProduct]:
        return (
            super()
            .get_queryset(request)
            .annotate(
                variant_count=Count("variants", distinct=True),
                waiting_count=Count(
                    "variants__subscriptions",
                    filter=Q(variants__subscriptions__status__in=WAITING),
                    distinct=True,
                ),
            )
        )

    @admin.display(description="display item", ordering="display_item_id")
    def display_item_id(self, obj: BackInStockProduct) -> int:
        return obj.display_item_id

    @admin.display(description="sizes", ordering="variant_count")
    def variant_count(self, obj: BackInStockProduct) -> int:
        return int(obj.variant_count)  # type: ignore[attr-defined]

    @admin.display(description="shoppers waiting", ordering="waiting_count")
    def waiting_count(self, obj: BackInStockProduct) -> int:
        return int(obj.waiting_count)  # type: ignore[attr-defined]

    @admin.display(description="shoppers waiting")
    def shoppers_waiting(self, obj: BackInStockProduct) -> SafeString:
        return shoppers_waiting_table(
            subscriptions=Subscription.objects.filter(variant__product=obj),
            search=obj.external_id,
        )

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Klaviyo holds a copy; removing only ours would leave it orphaned there.
        return False


@admin.register(BackInStockVariant)
class BackInStockVariantAdmin(StorefrontItemSearch, _ReadOnlyAdmin):
    list_display = (
        "external_id",
        *product_columns(path="product__"),
        *size_columns(path=""),
        "size_sku",
        "subscriber_count",
    )
    search_fields = ("external_id", "size__sku", "product__display_item__variant__product__name")
    list_filter = ship_to_filters(path="product__")
    list_select_related = (*product_select_related(path="product__"), "size")
    ordering = ("external_id",)
    readonly_fields = ("shoppers_waiting",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[BackInStockVariant]:
        return (
            super()
            .get_queryset(request)
            .annotate(
                subscriber_count=Count("subscriptions", filter=Q(subscriptions__status__in=WAITING))
            )
        )

    def get_inlines(self, request: HttpRequest, obj: Any) -> list[type[InlineModelAdmin]]:
        return [*super().get_inlines(request, obj), *additions.variant_inlines]

    @admin.display(description="SKU", ordering="size__sku")
    def size_sku(self, obj: BackInStockVariant) -> str:
        return obj.size.sku

    @admin.display(description="shoppers waiting", ordering="subscriber_count")
    def subscriber_count(self, obj: BackInStockVariant) -> int:
        return int(obj.subscriber_count)  # type: ignore[attr-defined]

    @admin.display(description="shoppers waiting")
    def shoppers_waiting(self, obj: BackInStockVariant) -> SafeString:
        return shoppers_waiting_table(
            subscriptions=Subscription.objects.filter(variant=obj), search=obj.external_id
        )

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Subscription)
class SubscriptionAdmin(StorefrontItemSearch, _ReadOnlyAdmin):
    storefront_item_path = "variant__"
    list_display: tuple[Any, ...] = (
        "email",
        item_column(path="variant__"),
        product_columns(path="variant__product__")[3],  # ship-to (the market is a filter)
        "language_code",
        "status_short",
        "attempt_count",
        "created_at_short",
        "subscribed_at_short",
        "last_error_short",
    )
    search_fields = (
        "email",
        "variant__external_id",
        "variant__size__sku",
        "variant__product__display_item__variant__product__name",
    )
    list_filter = ("status", *ship_to_filters(path="variant__product__"), "language")
    list_select_related = (
        *product_select_related(path="variant__product__"),
        "variant__size",
        "language",
    )
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

    readonly_fields = ("push_state",)

    def get_list_display(self, request: HttpRequest) -> tuple[Any, ...]:
        return (*super().get_list_display(request), *additions.subscription_columns)

    def get_inlines(self, request: HttpRequest, obj: Any) -> list[type[InlineModelAdmin]]:
        return [*super().get_inlines(request, obj), *additions.subscription_inlines]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Subscription]:
        return super().get_queryset(request).annotate(**additions.subscription_annotations)

    class Media:
        css = {"all": ("backinstock/admin.css",)}

    @admin.display(description="tries", ordering="attempts")
    def attempt_count(self, obj: Subscription) -> int:
        return obj.attempts

    @admin.display(description="language", ordering="language__code")
    def language_code(self, obj: Subscription) -> str:
        return obj.language.code

    @admin.display(description="status", ordering="status")
    def status_short(self, obj: Subscription) -> SafeString:
        # The one word fits the column; what it means is in the tooltip.
        return format_html('<span title="{}">{}</span>', self.push_state(obj), obj.status)

    @admin.display(description="state")
    def push_state(self, obj: Subscription) -> str:
        """The status in words, with what the operator needs next: why it failed (Klaviyo's
        words), or how many attempts failed and when the next one is due."""
        if obj.status == SubscriptionStatus.FAILED:
            return f"failed ({obj.last_error or 'no reason recorded'})"
        if obj.status == SubscriptionStatus.SUBSCRIBED:
            if obj.profile_sent_at is None:
                return "subscribed (accepted by Klaviyo); its profile properties are on their way"
            return "subscribed (accepted by Klaviyo, profile properties set)"
        if obj.attempts and obj.last_error:
            due = obj.push_claimed_until
            when = (
                f"at {timezone.localtime(due):%Y-%m-%d %H:%M:%S}"
                if due is not None and due > timezone.now()
                else "with the next dispatch"
            )
            return f"pending: attempt {obj.attempts} failed ({obj.last_error}); next attempt {when}"
        return "pending (not yet in Klaviyo)"

    @admin.display(description="subscribed", ordering="created_at")
    def created_at_short(self, obj: Subscription) -> SafeString:
        return when_short(obj.created_at)

    @admin.display(description="in Klaviyo since", ordering="subscribed_at")
    def subscribed_at_short(self, obj: Subscription) -> SafeString:
        return when_short(obj.subscribed_at)

    @admin.display(description="last error")
    def last_error_short(self, obj: Subscription) -> SafeString:
        return format_html(
            '<span title="{}">{}</span>',
            obj.last_error,
            Truncator(obj.last_error).chars(LAST_ERROR_SHORT_LENGTH),
        )

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
            ngettext(
                "%(n)d failed subscription set back to pending; the worker will push it.",
                "%(n)d failed subscriptions set back to pending; the worker will push them.",
                retried,
            )
            % {"n": retried},
            messages.SUCCESS,
        )
        if skipped := len(selected) - retried:
            self.message_user(
                request,
                ngettext(
                    "%(n)d selected subscription was not failed and was left as it is.",
                    "%(n)d selected subscriptions were not failed and were left as they are.",
                    skipped,
                )
                % {"n": skipped},
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
            ngettext("Erased %(a)d address", "Erased %(a)d addresses", len(records))
            % {"a": len(records)}
            + ngettext(", %(n)d subscription", ", %(n)d subscriptions", deleted) % {"n": deleted}
            + "; audited in Erasures.",
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
