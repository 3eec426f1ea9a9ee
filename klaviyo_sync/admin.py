"""The Klaviyo integration's settings page: one record, edited in place."""

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Max
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from backinstock.admin import (
    StorefrontItemSearch,
    product_columns,
    product_select_related,
    ship_to_filters,
    size_columns,
    when_short,
)
from backinstock.admin_hooks import (
    subscription_column_add,
    subscription_inline_add,
    variant_inline_add,
)
from backinstock.models import Subscription
from klaviyo_sync.client import url_without_credentials
from klaviyo_sync.models import (
    CatalogSyncFailure,
    CatalogSyncRun,
    CatalogSyncTrigger,
    IntegrationSettings,
    PushAttempt,
    Restock,
    SentCatalogObject,
)
from klaviyo_sync.selectors import catalog_sync_run_latest, integration_settings_get
from klaviyo_sync.services import integration_settings_update
from klaviyo_sync.services.catalog import catalog_sync_progress_percent
from klaviyo_sync.services.connection import klaviyo_connection_check
from klaviyo_sync.tasks import sync_catalog

EDITABLE_FIELDS = (
    "catalog_sync_enabled",
    "back_in_stock_enabled",
    "minimum_stock_level",
    "product_url_template",
    "base_currency",
)


@admin.register(IntegrationSettings)
class IntegrationSettingsAdmin(admin.ModelAdmin):
    """A singleton: the list redirects to the one record, which is never deleted.

    Form validation runs the model's ``clean()`` (back in stock needs a completed full catalog
    sync); saving goes through ``integration_settings_update``, which validates again under a
    row lock and writes only what changed.
    """

    fieldsets = (
        ("Switches", {"fields": ("catalog_sync_enabled", "back_in_stock_enabled")}),
        ("Options", {"fields": ("minimum_stock_level", "product_url_template", "base_currency")}),
        (
            "Catalog sync",
            {
                "fields": (
                    "catalog_sync_state",
                    "sync_progress",
                    "first_full_sync_completed_at",
                    "updated_at",
                )
            },
        ),
        ("Connection (from the environment)", {"fields": ("api_key", "api_url", "api_revision")}),
    )
    change_form_template = "admin/klaviyo_sync/integrationsettings/change_form.html"
    readonly_fields = (
        "catalog_sync_state",
        "sync_progress",
        "first_full_sync_completed_at",
        "updated_at",
        "api_key",
        "api_url",
        "api_revision",
    )

    @admin.display(description="Latest sync")
    def sync_progress(self, obj: IntegrationSettings) -> str:
        run = catalog_sync_run_latest()
        if run is None:
            return "No catalog sync has run yet."
        kind = "full" if run.full else "incremental"
        text = (
            f"{kind}, {run.state}: {run.done + run.unchanged + run.failed} of {run.total} items "
            f"({catalog_sync_progress_percent(run)} %), {run.done} sent, {run.unchanged} "
            f"unchanged, {run.failed} failed; started {run.started_at:%Y-%m-%d %H:%M:%S}"
        )
        if run.error:
            text += f"; error: {run.error}"
        for failure in run.failures.all()[:5]:
            text += f"\n{failure.external_id}: {failure.detail}"
        return text

    @admin.display(description="Klaviyo API key")
    def api_key(self, obj: IntegrationSettings) -> str:
        return "present" if settings.KLAVIYO_API_KEY else "absent (nothing is sent to Klaviyo)"

    @admin.display(description="Klaviyo API URL")
    def api_url(self, obj: IntegrationSettings) -> str:
        return url_without_credentials(settings.KLAVIYO_API_URL)

    @admin.display(description="Klaviyo API revision")
    def api_revision(self, obj: IntegrationSettings) -> str:
        return str(settings.KLAVIYO_REVISION)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return super().has_add_permission(request) and not IntegrationSettings.objects.exists()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        record = integration_settings_get()
        opts = self.opts
        url = reverse(
            f"admin:{opts.app_label}_{opts.model_name}_change",
            args=[record.pk],
            current_app=self.admin_site.name,
        )
        return HttpResponseRedirect(url)

    def save_model(
        self,
        request: HttpRequest,
        obj: IntegrationSettings,
        form: forms.ModelForm,
        change: bool,
    ) -> None:
        changes = {
            name: form.cleaned_data[name] for name in form.changed_data if name in EDITABLE_FIELDS
        }
        integration_settings_update(record=obj, **changes)

    def get_urls(self) -> list[URLPattern]:
        check = path(
            "check-connection/",
            self.admin_site.admin_view(self.check_connection_view),
            name="klaviyo_sync_integrationsettings_check_connection",
        )
        return [check, *super().get_urls()]

    def check_connection_view(self, request: HttpRequest) -> HttpResponse:
        """The health panel's "Test Klaviyo connection": what ``klaviyo check`` does."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        result = klaviyo_connection_check()
        self.message_user(
            request, result.message, messages.SUCCESS if result.ok else messages.ERROR
        )
        return HttpResponseRedirect(reverse("admin:index", current_app=self.admin_site.name))

    def response_change(self, request: HttpRequest, obj: IntegrationSettings) -> HttpResponse:
        if "_run_full_sync" in request.POST:
            sync_catalog.delay(full=True, trigger=CatalogSyncTrigger.BUTTON)
            self.message_user(request, "A full catalog sync was queued.", messages.SUCCESS)
            return HttpResponseRedirect(request.path)
        return super().response_change(request, obj)


class _ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(CatalogSyncRun)
class CatalogSyncRunAdmin(_ReadOnly):
    """Each run: what started it, and what became of every item (the counts add up)."""

    list_display = (
        "started_at",
        "full",
        "trigger",
        "state",
        "total",
        "done",
        "unchanged",
        "failed_link",
        "not_sent",
        "missing_repaired",
        "calls",
        "finished_at",
    )
    list_filter = ("full", "state", "trigger")
    date_hierarchy = "started_at"
    readonly_fields = ("failed_link",)

    @admin.display(description="failed", ordering="failed")
    def failed_link(self, obj: CatalogSyncRun) -> SafeString | str:
        """The number of failed items, linking to every one of them (paginated)."""
        if not obj.failed:
            return "0"
        url = reverse("admin:klaviyo_sync_catalogsyncfailure_changelist")
        return format_html('<a href="{}?run__id__exact={}">{}</a>', url, obj.pk, obj.failed)


@admin.register(SentCatalogObject)
class SentCatalogObjectAdmin(_ReadOnly):
    """What Klaviyo has of each catalog object, as last accepted, and the last error."""

    list_display = (
        "kind",
        "external_id",
        "exists_in_klaviyo",
        "inventory_quantity",
        "sent_at",
        "last_error",
    )
    list_filter = ("kind", "exists_in_klaviyo")
    search_fields = ("external_id",)


@admin.register(Restock)
class RestockAdmin(StorefrontItemSearch, _ReadOnly):
    """When Klaviyo was told a back-in-stock variant is available again, and who was waiting."""

    storefront_item_path = "variant__"
    list_display = (
        "sent_at",
        *product_columns(path="variant__product__"),
        *size_columns(path="variant__"),
        "variant",
        "previous_quantity",
        "quantity",
        "waiting_subscribers",
    )
    list_select_related = (
        *product_select_related(path="variant__product__"),
        "variant__size",
    )
    search_fields = (
        "variant__external_id",
        "variant__size__sku",
        "variant__product__display_item__variant__product__name",
    )
    list_filter = ship_to_filters(path="variant__product__")
    date_hierarchy = "sent_at"


class RestockInline(admin.TabularInline):
    model = Restock
    fields = ("sent_at", "previous_quantity", "quantity", "waiting_subscribers")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("-sent_at",)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.display(description="last restock", ordering="last_restock")
def last_restock_sent(obj: Subscription) -> SafeString:
    """When Klaviyo was last told the size is back (its flow then emails the shopper)."""
    return when_short(obj.last_restock)  # type: ignore[attr-defined]


# The admin's index shows the health panel (klaviyo_sync.health) above the apps. The navigation
# sidebar repeats the index on every page and takes a fifth of a 1440 px screen from the lists;
# the breadcrumbs and the index are the way around.
admin.site.index_template = "admin/klaviyo_sync/index.html"
admin.site.enable_nav_sidebar = False

# Back in stock knows nothing of Klaviyo: what Klaviyo was told, and when, is added to its pages.
variant_inline_add(inline=RestockInline)
subscription_column_add(
    column=last_restock_sent, annotations={"last_restock": Max("variant__restocks__sent_at")}
)


class PushAttemptInline(admin.TabularInline):
    """Every attempt to send the subscription to Klaviyo, an operator's retries included."""

    model = PushAttempt
    fields = ("at", "step", "outcome", "error")
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name = "push attempt"
    verbose_name_plural = "push attempts (history)"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


subscription_inline_add(inline=PushAttemptInline)


@admin.register(CatalogSyncFailure)
class CatalogSyncFailureAdmin(_ReadOnly):
    """Every element a catalog sync run could not send, with Klaviyo's words; paginated."""

    list_display = ("run", "external_id", "detail")
    list_filter = ("run",)
    search_fields = ("external_id", "detail")
    list_select_related = ("run",)
    list_per_page = 100
