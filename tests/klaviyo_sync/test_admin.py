import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from klaviyo_sync.models import IntegrationSettings
from klaviyo_sync.selectors import integration_settings_get
from klaviyo_sync.services import integration_settings_update

CHANGE_URL = reverse("admin:klaviyo_sync_integrationsettings_change", args=[1])
CHANGELIST_URL = reverse("admin:klaviyo_sync_integrationsettings_changelist")

BACK_IN_STOCK_REFUSED = "Back in stock can be switched on only after the first full catalog sync"


def _form(**changes):
    """The settings form as posted, defaults unless changed; unchecked boxes are not sent."""
    fields = {
        "catalog_sync_enabled": False,
        "back_in_stock_enabled": False,
        "minimum_stock_level": 10,
        "product_url_template": "https://shop.example.com/product/{display_uri}",
        "base_currency": "USD",
        **changes,
    }
    return {
        name: ("on" if value is True else value)
        for name, value in fields.items()
        if value is not False
    }


@pytest.fixture
def record(db) -> IntegrationSettings:
    return integration_settings_get()


@pytest.fixture
def synced(record) -> IntegrationSettings:
    """As after a first complete full catalog sync."""
    IntegrationSettings.objects.filter(pk=record.pk).update(
        catalog_sync_enabled=True,
        catalog_sync_state="completed",
        first_full_sync_completed_at=timezone.now(),
    )
    record.refresh_from_db()
    return record


def test_the_changelist_redirects_to_the_one_settings_page_creating_it(admin_client, db):
    response = admin_client.get(CHANGELIST_URL)

    assert response.status_code == 302
    assert response.url == CHANGE_URL
    assert IntegrationSettings.objects.filter(pk=1).exists()


def test_the_settings_can_be_neither_added_again_nor_deleted(admin_client, record):
    assert (
        admin_client.get(reverse("admin:klaviyo_sync_integrationsettings_add")).status_code == 403
    )
    delete_url = reverse("admin:klaviyo_sync_integrationsettings_delete", args=[1])
    assert admin_client.post(delete_url, {"post": "yes"}).status_code == 403
    assert IntegrationSettings.objects.filter(pk=1).exists()


def test_switching_back_in_stock_on_before_the_first_full_sync_shows_the_error(
    admin_client, record
):
    response = admin_client.post(CHANGE_URL, _form(back_in_stock_enabled=True, base_currency="EUR"))

    assert response.status_code == 200
    assert BACK_IN_STOCK_REFUSED in response.content.decode()
    record.refresh_from_db()
    assert (record.back_in_stock_enabled, record.base_currency) == (False, "USD")


def test_switching_back_in_stock_on_after_the_first_full_sync_saves_it(admin_client, synced):
    response = admin_client.post(
        CHANGE_URL, _form(catalog_sync_enabled=True, back_in_stock_enabled=True)
    )

    assert response.status_code == 302
    synced.refresh_from_db()
    assert synced.back_in_stock_enabled is True


def test_saving_the_page_keeps_the_sync_state_the_worker_wrote(admin_client, synced):
    response = admin_client.post(
        CHANGE_URL, _form(catalog_sync_enabled=True, minimum_stock_level=3)
    )

    assert response.status_code == 302
    synced.refresh_from_db()
    assert (synced.minimum_stock_level, synced.catalog_sync_state) == (3, "completed")
    assert synced.first_full_sync_completed_at is not None


def test_the_page_says_the_api_key_is_present_without_showing_it(admin_client, record, settings):
    settings.KLAVIYO_API_KEY = "pk_secret_123"
    settings.KLAVIYO_API_URL = "http://sandbox:8025"

    html = admin_client.get(CHANGE_URL).content.decode()

    assert '<div class="readonly">present</div>' in html
    assert "pk_secret_123" not in html
    assert "http://sandbox:8025" in html
    assert settings.KLAVIYO_REVISION in html


def test_the_page_says_the_api_key_is_absent_when_unset(admin_client, record, settings):
    settings.KLAVIYO_API_KEY = ""

    html = admin_client.get(CHANGE_URL).content.decode()

    assert '<div class="readonly">absent (nothing is sent to Klaviyo)</div>' in html


def test_the_page_does_not_show_credentials_in_the_api_url(admin_client, record, settings):
    settings.KLAVIYO_API_URL = "https://user:s3cret@a.klaviyo.example:8443/"

    html = admin_client.get(CHANGE_URL).content.decode()

    assert "s3cret" not in html
    assert "https://a.klaviyo.example:8443/" in html


# --- integration_settings_update ---------------------------------------------------------------


def test_the_service_refuses_back_in_stock_before_the_first_full_sync(record):
    with pytest.raises(ValidationError) as refused:
        integration_settings_update(record=record, back_in_stock_enabled=True)

    assert "back_in_stock_enabled" in refused.value.message_dict
    record.refresh_from_db()
    assert record.back_in_stock_enabled is False


def test_the_service_refuses_a_product_url_template_without_the_placeholder(record):
    with pytest.raises(ValidationError) as refused:
        integration_settings_update(record=record, product_url_template="https://shop.example/")

    assert "product_url_template" in refused.value.message_dict


def test_the_service_saves_the_given_settings_and_leaves_the_others(synced):
    saved = integration_settings_update(
        record=synced, back_in_stock_enabled=True, minimum_stock_level=5, base_currency="SEK"
    )

    stored = IntegrationSettings.objects.get()
    assert stored.back_in_stock_enabled is True
    assert (stored.minimum_stock_level, stored.base_currency) == (5, "SEK")
    assert stored.catalog_sync_enabled is True
    assert saved.minimum_stock_level == 5


def test_the_service_does_not_overwrite_state_written_since_the_record_was_read(record):
    IntegrationSettings.objects.filter(pk=record.pk).update(catalog_sync_state="running")

    integration_settings_update(record=record, catalog_sync_enabled=True)

    stored = IntegrationSettings.objects.get()
    assert (stored.catalog_sync_enabled, stored.catalog_sync_state) == (True, "running")


# --- Sync progress, the full-sync button, restocks ---------------------------------------------


def test_the_settings_page_shows_the_latest_sync_and_queues_a_full_sync(admin_client, monkeypatch):
    from klaviyo_sync import admin as klaviyo_admin
    from klaviyo_sync.models import CatalogSyncRun

    run = CatalogSyncRun.objects.create(
        full=True, state="failed", total=10, done=7, unchanged=2, failed=1
    )
    run.failures.create(external_id="12400", detail="Catalog item `12400` does not exist.")
    queued = []
    monkeypatch.setattr(klaviyo_admin.sync_catalog, "delay", lambda **kw: queued.append(kw))
    record = integration_settings_get()
    url = reverse("admin:klaviyo_sync_integrationsettings_change", args=[record.pk])

    page = admin_client.get(url).content.decode()
    response = admin_client.post(
        url,
        {
            "minimum_stock_level": 10,
            "product_url_template": record.product_url_template,
            "base_currency": record.base_currency,
            "_run_full_sync": "1",
        },
    )

    assert "10 of 10 items" in page
    assert "Catalog item `12400` does not exist." in page
    assert 'name="_run_full_sync"' in page
    assert response.status_code == 302
    assert queued == [{"full": True, "trigger": "button"}]


def test_restocks_show_on_the_variant_page_and_next_to_subscriptions(admin_client):
    from django.utils import timezone

    from klaviyo_sync.models import Restock
    from tests.factories import SubscriptionFactory

    subscription = SubscriptionFactory()
    sent_at = timezone.now()
    Restock.objects.create(
        variant=subscription.variant,
        previous_quantity=0,
        quantity=25,
        waiting_subscribers=1,
        sent_at=sent_at,
    )

    variant_page = admin_client.get(
        reverse("admin:backinstock_backinstockvariant_change", args=[subscription.variant.pk])
    ).content.decode()
    subscriptions = admin_client.get(
        reverse("admin:backinstock_subscription_changelist")
    ).content.decode()

    assert "Restocks" in variant_page and ">25<" in variant_page.replace(" ", "")
    assert "last restock" in subscriptions.lower()
    assert str(sent_at.year) in subscriptions


def test_the_restock_list_names_the_product_and_is_found_by_storefront_item_id(admin_client):
    from django.utils import timezone

    from klaviyo_sync.models import Restock
    from tests.factories import BackInStockVariantFactory

    variant = BackInStockVariantFactory(product__display_item__variant__product__name="Hoodie")
    other = BackInStockVariantFactory()
    for restocked in (variant, other):
        Restock.objects.create(
            variant=restocked,
            previous_quantity=0,
            quantity=25,
            waiting_subscribers=1,
            sent_at=timezone.now(),
        )
    storefront_item = f"{variant.product.display_item_id}-{variant.size_id}"

    response = admin_client.get(
        reverse("admin:klaviyo_sync_restock_changelist"), {"q": storefront_item}
    )

    assert [restock.variant_id for restock in response.context["cl"].result_list] == [variant.pk]
    assert "Hoodie" in response.content.decode()


def test_a_base_currency_no_pricelist_has_is_refused_with_the_pricelists_currencies(record):
    from tests.factories import PricelistFactory

    PricelistFactory(currency="SEK")
    PricelistFactory(currency="EUR")

    with pytest.raises(ValidationError) as refused:
        integration_settings_update(record=record, base_currency="GBP")

    assert refused.value.message_dict["base_currency"] == [
        "No pricelist is in GBP, so catalog items would reach Klaviyo without a price. "
        "The pricelists' currencies: EUR, SEK."
    ]
    record.refresh_from_db()
    assert record.base_currency == "USD"


def test_a_base_currency_a_pricelist_has_is_saved(record):
    from tests.factories import PricelistFactory

    PricelistFactory(currency="SEK")

    assert integration_settings_update(record=record, base_currency="SEK").base_currency == "SEK"


def test_the_settings_page_shows_the_base_currency_refusal(admin_client, record):
    from tests.factories import PricelistFactory

    PricelistFactory(currency="SEK")

    response = admin_client.post(CHANGE_URL, _form(base_currency="GBP"))

    assert response.status_code == 200
    assert "No pricelist is in GBP" in response.content.decode()


def test_the_configure_command_refuses_a_base_currency_no_pricelist_has(record):
    from django.core.management import CommandError, call_command

    from tests.factories import PricelistFactory

    PricelistFactory(currency="SEK")

    with pytest.raises(CommandError, match="No pricelist is in GBP"):
        call_command("klaviyo", "configure", "--base-currency", "GBP")


def test_the_settings_page_s_breadcrumb_names_the_integration_once(admin_client, record):
    import re

    html = admin_client.get(CHANGE_URL).content.decode()

    trail = " ".join(re.search(r'<div class="breadcrumbs">(.*?)</div>', html, re.DOTALL)[1].split())
    assert trail.count("Klaviyo integration") == 1
