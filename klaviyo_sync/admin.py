"""The Klaviyo integration's settings page: one record, edited in place."""

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from django import forms
from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from klaviyo_sync.models import IntegrationSettings
from klaviyo_sync.selectors import integration_settings_get
from klaviyo_sync.services import integration_settings_update

EDITABLE_FIELDS = (
    "catalog_sync_enabled",
    "back_in_stock_enabled",
    "minimum_stock_level",
    "product_url_template",
    "base_currency",
)


def _without_credentials(url: str) -> str:
    """The URL without any ``user:password@`` part, which must not reach an admin page."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc))


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
            {"fields": ("catalog_sync_state", "first_full_sync_completed_at", "updated_at")},
        ),
        ("Connection (from the environment)", {"fields": ("api_key", "api_url", "api_revision")}),
    )
    readonly_fields = (
        "catalog_sync_state",
        "first_full_sync_completed_at",
        "updated_at",
        "api_key",
        "api_url",
        "api_revision",
    )

    @admin.display(description="Klaviyo API key")
    def api_key(self, obj: IntegrationSettings) -> str:
        return "present" if settings.KLAVIYO_API_KEY else "absent (nothing is sent to Klaviyo)"

    @admin.display(description="Klaviyo API URL")
    def api_url(self, obj: IntegrationSettings) -> str:
        return _without_credentials(settings.KLAVIYO_API_URL)

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
