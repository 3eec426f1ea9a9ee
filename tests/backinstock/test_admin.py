import pytest
from django.contrib import admin
from django.contrib.messages import get_messages
from django.urls import reverse

from backinstock.models import (
    BackInStockProduct,
    BackInStockVariant,
    ErasureRecord,
    Subscription,
    SubscriptionStatus,
)
from tests.factories import (
    BackInStockProductFactory,
    BackInStockVariantFactory,
    CountryFactory,
    DisplayItemFactory,
    SizeFactory,
    StateFactory,
    SubscriptionFactory,
)

BACKINSTOCK_MODELS = sorted(
    (model for model in admin.site._registry if model._meta.app_label == "backinstock"),
    key=lambda model: model.__name__,
)


def _url(model, view, *args):
    return reverse(f"admin:backinstock_{model._meta.model_name}_{view}", args=args)


@pytest.fixture
def subscription(db):
    variant = BackInStockVariantFactory(
        size=SizeFactory(sku="HD-1-BLK-M"), external_id="12366_SE_00_23400"
    )
    ErasureRecord.objects.create(email_hash="0" * 64, subscriptions_deleted=2, source="command")
    return SubscriptionFactory(
        variant=variant,
        email="ann@example.com",
        status=SubscriptionStatus.FAILED,
        attempts=5,
        last_error="Klaviyo said 400: invalid profile",
    )


def _changelist_ids(response) -> list[int]:
    return [record.pk for record in response.context["cl"].result_list]


def test_every_backinstock_model_is_registered():
    assert {model.__name__ for model in BACKINSTOCK_MODELS} == {
        "BackInStockProduct",
        "BackInStockVariant",
        "ErasureRecord",
        "Subscription",
    }


@pytest.mark.parametrize("model", BACKINSTOCK_MODELS, ids=lambda model: model.__name__)
def test_the_changelist_links_to_the_model_s_records(admin_client, subscription, model):
    record = model.objects.first()

    response = admin_client.get(_url(model, "changelist"))

    assert response.status_code == 200
    assert _url(model, "change", record.pk) in response.content.decode()


@pytest.mark.parametrize("model", BACKINSTOCK_MODELS, ids=lambda model: model.__name__)
def test_the_change_page_shows_the_record_read_only(admin_client, subscription, model):
    record = model.objects.first()

    response = admin_client.get(_url(model, "change", record.pk))

    assert response.status_code == 200
    assert str(record) in response.content.decode()
    assert response.context["adminform"].form.fields == {}
    assert b'name="_save"' not in response.content


@pytest.mark.parametrize("model", BACKINSTOCK_MODELS, ids=lambda model: model.__name__)
def test_records_cannot_be_added_in_the_admin(admin_client, db, model):
    response = admin_client.get(_url(model, "add"))

    assert response.status_code == 403


def test_the_subscription_list_shows_the_variant_and_a_short_last_error(admin_client, subscription):
    Subscription.objects.filter(pk=subscription.pk).update(last_error="x" * 500)

    response = admin_client.get(_url(Subscription, "changelist"))

    html = response.content.decode()
    assert "12366_SE_00_23400" in html
    assert "x" * 59 + "…" in html
    assert "x" * 61 + "<" not in html  # the whole error is only in the tooltip


@pytest.mark.parametrize("term", ["ann@example", "12366_SE_00_23400"])
def test_subscriptions_are_found_by_email_or_variant(admin_client, subscription, term):
    SubscriptionFactory(email="bob@example.org")

    response = admin_client.get(_url(Subscription, "changelist"), {"q": term})

    assert _changelist_ids(response) == [subscription.pk]


def test_back_in_stock_variants_are_found_by_size_sku(admin_client, subscription):
    BackInStockVariantFactory(size=SizeFactory(sku="TE-1-WHT-S"))

    response = admin_client.get(_url(subscription.variant, "changelist"), {"q": "HD-1-BLK-M"})

    assert _changelist_ids(response) == [subscription.variant.pk]


def test_the_retry_action_puts_failed_subscriptions_back_to_pending(admin_client, subscription):
    subscribed = SubscriptionFactory(status=SubscriptionStatus.SUBSCRIBED, attempts=1)

    response = admin_client.post(
        _url(Subscription, "changelist"),
        {"action": "retry_failed", "_selected_action": [subscription.pk, subscribed.pk]},
    )

    assert response.status_code == 302
    subscription.refresh_from_db()
    assert (subscription.status, subscription.attempts, subscription.last_error) == (
        SubscriptionStatus.PENDING,
        0,
        "",
    )
    subscribed.refresh_from_db()
    assert (subscribed.status, subscribed.attempts) == (SubscriptionStatus.SUBSCRIBED, 1)
    shown = [str(message) for message in get_messages(response.wsgi_request)]
    assert shown[0] == "1 failed subscription set back to pending; the worker will push it."
    assert shown[1] == "1 selected subscription was not failed and was left as it is."


# --- Erasure --------------------------------------------------------------------------------------


def test_a_subscription_is_found_by_any_spelling_of_its_address(admin_client, subscription):
    idn = SubscriptionFactory(email="idn@xn--bcher-kva.de")

    response = admin_client.get(_url(Subscription, "changelist"), {"q": "IDN@Bücher.de"})

    assert _changelist_ids(response) == [idn.pk]


@pytest.mark.parametrize(
    ("action", "profile_deletion"),
    [("erase_addresses", False), ("erase_addresses_and_klaviyo_profiles", True)],
)
def test_erase_this_address_erases_every_subscription_of_it_and_audits_it(
    admin_client, subscription, action, profile_deletion
):
    from backinstock.models import ProfileDeletionRequest, erasure_email_hash

    other_of_ann = SubscriptionFactory(email="ann@example.com")
    bob = SubscriptionFactory(email="bob@example.com")

    response = admin_client.post(
        _url(Subscription, "changelist"),
        {"action": action, "_selected_action": [subscription.pk]},
    )

    assert response.status_code == 302
    assert list(Subscription.objects.values_list("pk", flat=True)) == [bob.pk]
    assert not Subscription.objects.filter(pk=other_of_ann.pk).exists()
    record = ErasureRecord.objects.get(source="admin")
    assert record.email_hash == erasure_email_hash("ann@example.com")
    assert record.subscriptions_deleted == 2
    assert record.klaviyo_deletion_requested is profile_deletion
    assert ProfileDeletionRequest.objects.filter(erasure=record).exists() is profile_deletion
    shown = " ".join(str(message) for message in get_messages(response.wsgi_request))
    assert ("Klaviyo keeps its copy" in shown) is not profile_deletion


def test_deleting_subscriptions_in_the_admin_is_an_audited_erasure_that_says_klaviyo_keeps_a_copy(
    admin_client, subscription
):
    other_of_ann = SubscriptionFactory(email="ann@example.com")

    response = admin_client.post(
        _url(Subscription, "changelist"),
        {"action": "delete_selected", "_selected_action": [subscription.pk], "post": "yes"},
    )

    assert response.status_code == 302
    assert list(Subscription.objects.values_list("pk", flat=True)) == [other_of_ann.pk]
    record = ErasureRecord.objects.get(source="admin")
    assert (record.subscriptions_deleted, record.klaviyo_deletion_requested) == (1, False)
    shown = " ".join(str(message) for message in get_messages(response.wsgi_request))
    assert "Klaviyo keeps its copy" in shown


def test_deleting_one_subscription_from_its_page_is_an_audited_erasure(admin_client, subscription):
    response = admin_client.post(_url(Subscription, "delete", subscription.pk), {"post": "yes"})

    assert response.status_code == 302
    assert not Subscription.objects.exists()
    assert ErasureRecord.objects.get(source="admin").subscriptions_deleted == 1


def test_an_erasure_is_found_by_typing_its_address(admin_client, subscription, settings):
    from backinstock.services import person_erase

    person_erase(email="ann@example.com", source="command", delete_klaviyo_profile=False)
    person_erase(email="bob@example.com", source="command", delete_klaviyo_profile=False)
    ann = ErasureRecord.objects.get(source="command", subscriptions_deleted=1)

    response = admin_client.get(_url(ErasureRecord, "changelist"), {"q": " ANN@Example.com"})

    assert _changelist_ids(response) == [ann.pk]


def test_the_delete_confirmation_says_klaviyo_keeps_its_copy(admin_client, subscription):
    one = admin_client.get(_url(Subscription, "delete", subscription.pk))
    selected = admin_client.post(
        _url(Subscription, "changelist"),
        {"action": "delete_selected", "_selected_action": [subscription.pk]},
    )

    for page in (one, selected):
        assert "Klaviyo keeps its copy" in page.content.decode()
    assert Subscription.objects.filter(pk=subscription.pk).exists()


@pytest.fixture
def waiting_in_new_york(db):
    """Ann waits for size M of the Hoodie, Black (display item 12366, size 23400) in New York."""
    country = CountryFactory(code="US", name="United States", market__name="North America")
    CountryFactory(code="NO", name="Norway", is_ship_to=False)
    state = StateFactory(country=country, code="NY", name="New York")
    display_item = DisplayItemFactory(
        id=12366, variant__name="Black", variant__product__name="Hoodie"
    )
    size = SizeFactory(id=23400, name="M", sku="HD-1-BLK-M", variant=display_item.variant)
    product = BackInStockProductFactory(display_item=display_item, country=country, state=state)
    variant = BackInStockVariantFactory(product=product, size=size)
    return SubscriptionFactory(variant=variant, email="ann@example.com")


def test_the_subscription_list_names_the_product_size_and_ship_to_location_in_shop_words(
    admin_client, waiting_in_new_york
):
    response = admin_client.get(_url(Subscription, "changelist"))

    row = response.content.decode().split(f'value="{waiting_in_new_york.pk}"')[1]
    for words in ("Hoodie, Black, M", "North America", "United States, New York"):
        assert words in row
    assert "12366-23400" in row


@pytest.mark.parametrize("term", ["hoodie", "HD-1-BLK-M", "12366-23400", " 12366-23400 "])
def test_subscriptions_are_found_by_product_name_sku_or_storefront_item_id(
    admin_client, waiting_in_new_york, term
):
    SubscriptionFactory(email="bob@example.org")

    response = admin_client.get(_url(Subscription, "changelist"), {"q": term})

    assert _changelist_ids(response) == [waiting_in_new_york.pk]


def test_a_storefront_item_id_of_another_size_finds_nothing(admin_client, waiting_in_new_york):
    response = admin_client.get(_url(Subscription, "changelist"), {"q": "12366-23401"})

    assert _changelist_ids(response) == []


@pytest.mark.parametrize(
    "model", [BackInStockProduct, BackInStockVariant, Subscription], ids=lambda m: m.__name__
)
def test_the_location_filters_offer_only_ship_to_locations(
    admin_client, waiting_in_new_york, model
):
    response = admin_client.get(_url(model, "changelist"))

    choices = {
        spec.title: [choice["display"] for choice in spec.choices(response.context["cl"])]
        for spec in response.context["cl"].filter_specs
    }
    assert "United States (US)" in choices["ship-to country"]
    assert not any("Norway" in display for display in choices["ship-to country"])
    assert "New York (US-NY)" in choices["ship-to state"]
    assert "North America" in choices["market"]


@pytest.mark.parametrize(
    ("parameter", "value", "found"),
    [("country", "US", True), ("country", "SE", False), ("state", None, True)],
)
def test_the_location_filters_narrow_the_subscription_list(
    admin_client, waiting_in_new_york, parameter, value, found
):
    value = value or str(waiting_in_new_york.variant.product.state_id)
    SubscriptionFactory(email="bob@example.org")

    response = admin_client.get(_url(Subscription, "changelist"), {parameter: value})

    assert (_changelist_ids(response) == [waiting_in_new_york.pk]) is found


@pytest.mark.parametrize("page", ["variant", "product"])
def test_a_variant_s_and_a_product_s_page_list_the_shoppers_waiting(
    admin_client, waiting_in_new_york, page
):
    SubscriptionFactory(
        variant=waiting_in_new_york.variant, email="gone@example.com", status="failed"
    )
    record = waiting_in_new_york.variant
    if page == "product":
        record = record.product

    html = admin_client.get(_url(type(record), "change", record.pk)).content.decode()

    assert "ann@example.com" in html
    assert "gone@example.com" not in html
    assert "1 waiting" in html


def test_each_back_in_stock_page_has_one_admin_class_extended_through_the_hooks(db):
    from backinstock.admin import BackInStockVariantAdmin, SubscriptionAdmin
    from backinstock.admin_hooks import additions

    assert type(admin.site._registry[Subscription]) is SubscriptionAdmin
    assert type(admin.site._registry[BackInStockVariant]) is BackInStockVariantAdmin
    assert [column.__name__ for column in additions.subscription_columns] == ["last_restock_sent"]
    assert [inline.__name__ for inline in additions.variant_inlines] == ["RestockInline"]


@pytest.mark.parametrize("term", ["99999999999999999999999-1", "9223372036854775808-1"])
def test_a_storefront_item_id_beyond_any_id_finds_nothing_instead_of_failing(
    admin_client, subscription, term
):
    response = admin_client.get(_url(Subscription, "changelist"), {"q": term})

    assert response.status_code == 200
    assert _changelist_ids(response) == []
