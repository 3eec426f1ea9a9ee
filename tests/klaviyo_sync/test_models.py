"""What reaches shoppers' emails as links is checked where it enters (issue 9.5)."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from klaviyo_sync.models import IntegrationSettings
from klaviyo_sync.selectors import integration_settings_get, product_url

REFUSED_TEMPLATES = [
    "javascript:alert(1)//{display_uri}",
    "data:text/html,{display_uri}",
    "/product/{display_uri}",
    "ftp://shop.example.com/{display_uri}",
    "https://{display_uri}.example.com/",
    "https://shop.example.com/product/",
]


@pytest.mark.parametrize("template", REFUSED_TEMPLATES)
def test_klaviyo_configure_refuses_a_product_url_template_that_is_not_http_with_the_uri_in_its_path(
    db, template
):
    before = integration_settings_get().product_url_template

    with pytest.raises(CommandError, match="display_uri"):
        call_command("klaviyo", "configure", f"--product-url-template={template}")

    assert integration_settings_get().product_url_template == before


@pytest.mark.parametrize("template", REFUSED_TEMPLATES[:2])
def test_the_admin_refuses_a_product_url_template_that_is_not_http(admin_client, db, template):
    record = integration_settings_get()
    response = admin_client.post(
        reverse("admin:klaviyo_sync_integrationsettings_change", args=[1]),
        {
            "minimum_stock_level": 10,
            "product_url_template": template,
            "base_currency": "USD",
        },
    )

    assert response.status_code == 200  # the form again, with the error
    assert "absolute http:// or https:// URL" in response.content.decode()
    assert IntegrationSettings.objects.get().product_url_template == record.product_url_template


@pytest.mark.parametrize(
    "template",
    ["https://shop.example.com/product/{display_uri}", "http://127.0.0.1:8030/p/{display_uri}?x=1"],
)
def test_an_http_template_with_the_uri_in_its_path_is_accepted(db, template):
    call_command("klaviyo", "configure", f"--product-url-template={template}")
    assert integration_settings_get().product_url_template == template


def test_the_display_uri_goes_into_the_url_as_one_percent_encoded_path_segment():
    url = product_url(
        template="https://shop.example.com/p/{display_uri}", display_uri='x"><script>a/b?c#d'
    )

    assert url == "https://shop.example.com/p/x%22%3E%3Cscript%3Ea%2Fb%3Fc%23d"


def test_a_plain_display_uri_is_left_as_it_is():
    url = product_url(template="https://shop.example.com/p/{display_uri}", display_uri="hoodie-1")
    assert url == "https://shop.example.com/p/hoodie-1"


@pytest.mark.parametrize("currency", ["usd", "US", "\x00SD", "€€€"])
def test_a_base_currency_that_is_not_three_upper_case_letters_is_refused(db, currency):
    with pytest.raises(CommandError, match="3 upper-case letters"):
        call_command("klaviyo", "configure", f"--base-currency={currency}")
    assert integration_settings_get().base_currency == "USD"


@pytest.mark.parametrize("level", ["2147483648", str(2**63), "2³", "-1"])
def test_a_minimum_stock_level_outside_the_columns_range_or_not_digits_is_refused(db, level):
    with pytest.raises(CommandError):
        call_command("klaviyo", "configure", f"--minimum-stock-level={level}")
    assert integration_settings_get().minimum_stock_level == 10
