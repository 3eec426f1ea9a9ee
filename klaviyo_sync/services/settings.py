"""Writes of the Klaviyo integration's settings."""

from functools import partial

from django.db import transaction

from klaviyo_sync.models import CatalogSyncTrigger, IntegrationSettings


def integration_settings_update(
    *,
    record: IntegrationSettings,
    catalog_sync_enabled: bool | None = None,
    back_in_stock_enabled: bool | None = None,
    minimum_stock_level: int | None = None,
    product_url_template: str | None = None,
    base_currency: str | None = None,
) -> IntegrationSettings:
    """Change the integration's switches and options; ``None`` leaves a setting as it is.

    Used by the admin page and by ``manage.py klaviyo configure``. The settings row is re-read
    and locked, the changes applied, the whole record validated with ``full_clean()`` (which
    refuses back in stock before the first full catalog sync has completed, and a product URL
    template without ``{display_uri}``), and only the changed fields are written: a catalog sync
    recording its state at the same moment is not overwritten with what ``record`` held.

    Raises ``django.core.exceptions.ValidationError`` and writes nothing when refused. Returns
    the saved record; ``record`` itself is not changed.

    Once the change has committed, switching catalog sync on (or changing the product URL
    template or base currency while it is on) queues a full sync, and a new minimum stock level
    a recomputation of every back-in-stock figure.
    """
    wanted = {
        "catalog_sync_enabled": catalog_sync_enabled,
        "back_in_stock_enabled": back_in_stock_enabled,
        "minimum_stock_level": minimum_stock_level,
        "product_url_template": product_url_template,
        "base_currency": base_currency,
    }
    changes = {name: value for name, value in wanted.items() if value is not None}
    with transaction.atomic():
        current, _ = IntegrationSettings.objects.select_for_update().get_or_create(pk=record.pk)
        changed = [name for name, value in changes.items() if getattr(current, name) != value]
        for name in changed:
            setattr(current, name, changes[name])
        current.full_clean()
        if changed:
            current.save(update_fields=[*changed, "updated_at"])
        from klaviyo_sync.tasks import push_stock_changes, sync_catalog

        resend_catalog = {"catalog_sync_enabled", "product_url_template", "base_currency"}
        if current.catalog_sync_enabled and resend_catalog.intersection(changed):
            # Switched on: the initial full sync. New URLs or currency: every item changes.
            trigger = (
                CatalogSyncTrigger.SWITCH
                if "catalog_sync_enabled" in changed
                else CatalogSyncTrigger.SETTINGS
            )
            transaction.on_commit(
                partial(sync_catalog.delay, full=True, trigger=trigger), robust=True
            )
        if "minimum_stock_level" in changed:
            # Every figure follows the minimum: recompute them all.
            transaction.on_commit(partial(push_stock_changes.delay, reconcile=True), robust=True)
    return current
