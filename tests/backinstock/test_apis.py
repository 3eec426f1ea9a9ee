"""The subscribe, list and erase endpoints, held to CONTRACT §3 and §4."""

import json
import threading
import time

import pytest
from django.db import connection
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from backinstock.apis import ShipTo, SubscribeInputSerializer, _subscribe_input_plain
from backinstock.models import BackInStockProduct, BackInStockVariant, Subscription
from tests.factories import DisplayItemFactory, LanguageFactory, SizeFactory

CHECKOUT_URL = "/api/checkout-api/back-in-stock-subscription"
SHOP_URL = "/api/shop-api/back-in-stock-subscription"
SHOP_LIST_URL = "/api/shop-api/back-in-stock-subscriptions"

US_NY = {
    "item": "12366-23400",
    "shipTo": {"country": "US", "state": "NY"},
    "email": "ann@example.com",
}
SE = {"item": "12366-23400", "shipTo": {"country": "SE"}, "email": "ann@example.com"}

pytestmark = pytest.mark.usefixtures("catalog", "back_in_stock_on")


def post(client, body, url=CHECKOUT_URL, **extra):
    return client.post(url, body, format="json", **extra)


def test_a_new_subscription_is_stored_pending_under_its_virtual_product_and_variant(api_client):
    response = post(api_client, {**US_NY, "email": "  Ann.Lee@Example.COM "})

    assert response.status_code == 201
    assert response.json() == {"subscribed": True}
    subscription = Subscription.objects.get()
    assert subscription.email == "ann.lee@example.com"
    assert subscription.status == "pending"
    assert subscription.language.code == "en"
    assert subscription.variant.external_id == "12366_US_NY_23400"
    assert subscription.variant.product.external_id == "12366_US_NY"
    assert subscription.variant.size_id == 23400


def test_a_country_without_states_gets_00_and_its_own_language(api_client):
    assert post(api_client, SE).status_code == 201

    subscription = Subscription.objects.get()
    assert subscription.variant.external_id == "12366_SE_00_23400"
    assert subscription.variant.product.state is None
    assert subscription.language.code == "sv"


def test_the_language_given_wins_over_the_countrys(api_client):
    assert post(api_client, {**SE, "language": "en"}).status_code == 201
    assert Subscription.objects.get().language.code == "en"


def test_a_country_without_a_language_falls_back_to_the_store_default(api_client, catalog):
    catalog.sweden.language = None
    catalog.sweden.save()

    assert post(api_client, SE).status_code == 201
    assert Subscription.objects.get().language.code == "en"


def test_a_repeat_gets_the_same_answer_and_stores_nothing_new(api_client):
    first = post(api_client, US_NY)
    repeat = post(api_client, {**US_NY, "email": "ANN@example.com"})

    assert (repeat.status_code, repeat.json()) == (first.status_code, first.json())
    assert Subscription.objects.count() == 1
    assert Subscription.objects.get().email == "ann@example.com"


def test_other_locations_and_sizes_reuse_the_virtual_product(api_client, catalog):
    other_size = SizeFactory(id=23401, variant=catalog.size.variant, name="L")
    post(api_client, US_NY)
    post(api_client, {**US_NY, "item": f"12366-{other_size.id}"})
    post(api_client, SE)

    assert Subscription.objects.count() == 3
    assert sorted(BackInStockProduct.objects.values_list("external_id", flat=True)) == [
        "12366_SE_00",
        "12366_US_NY",
    ]
    assert sorted(BackInStockVariant.objects.values_list("external_id", flat=True)) == [
        "12366_SE_00_23400",
        "12366_US_NY_23400",
        "12366_US_NY_23401",
    ]


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"item": None}, "item", "This field may not be null."),
        ({"item": "12366"}, "item", "item 12366 not found"),
        ({"item": "abc-def"}, "item", "item abc-def not found"),
        ({"item": "12366-99"}, "item", "item 12366-99 not found"),
        ({"item": "12999-23500"}, "item", "item 12999-23500 not found"),
        ({"item": "99999-23400"}, "item", "item 99999-23400 not found"),
        ({"shipTo": None}, "shipTo.country", "shipTo.country is required"),
        ({"shipTo": "SE"}, "shipTo.country", "shipTo must be an object"),
        ({"shipTo": {}}, "shipTo.country", "shipTo.country is required"),
        ({"shipTo": {"country": 46}}, "shipTo.country", "must be a string"),
        ({"shipTo": {"country": "S\x00"}}, "shipTo.country", "not a valid code"),
        ({"shipTo": {"country": "S" * 500}}, "shipTo.country", "not a valid code"),
        ({"shipTo": {"country": "XX"}}, "shipTo.country", "country XX is not a ship-to country"),
        ({"shipTo": {"country": "NO"}}, "shipTo.country", "country NO is not a ship-to country"),
        ({"shipTo": {"country": "US"}}, "shipTo.state", "state is required for country US"),
        ({"shipTo": {"country": "US", "state": "ZZ"}}, "shipTo.state", "state ZZ not found"),
        ({"shipTo": {"country": "US", "state": 5}}, "shipTo.state", "must be a string"),
        ({"shipTo": {"country": "SE", "state": "NY"}}, "shipTo.state", "country SE has no states"),
        ({"email": ""}, "email", "may not be blank"),
        ({"email": "not-an-address"}, "email", "email is not a valid address"),
        ({"email": "ann@"}, "email", "email is not a valid address"),
        ({"email": "a" * 250 + "@example.com"}, "email", "no more than 254 characters"),
        ({"language": "xx"}, "language", "language not found"),
    ],
)
def test_each_invalid_field_gets_its_own_error_and_nothing_is_stored(
    api_client, change, field, message
):
    response = post(api_client, {**US_NY, **change})

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert list(errors) == [field]
    assert message in errors[field]
    assert not Subscription.objects.exists()
    assert not BackInStockVariant.objects.exists()


@pytest.mark.parametrize("missing", ["item", "shipTo", "email"])
def test_each_required_field_is_reported_when_missing(api_client, missing):
    body = {key: value for key, value in US_NY.items() if key != missing}
    errors = post(api_client, body).json()["errors"]
    assert list(errors) == [missing if missing != "shipTo" else "shipTo.country"]


def test_every_bad_field_is_reported_at_once(api_client):
    response = post(
        api_client,
        {"item": "1-2", "shipTo": {"country": "ZZ"}, "email": "nope", "language": "xx"},
    )

    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"item", "shipTo.country", "email", "language"}


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        ('{"item": ', "application/json", 400),
        ("[1, 2]", "application/json", 400),
        ('"a string"', "application/json", 400),
        ("", "application/json", 400),
        ("item=12366-23400", "application/x-www-form-urlencoded", 415),
        ("hello", "text/plain", 415),
        ("[" * 3000 + "]" * 3000, "application/json", 400),
        (json.dumps({**US_NY, "padding": "x" * 20_000}), "application/json", 413),
    ],
    ids=["truncated", "array", "string", "empty", "form", "text", "deeply-nested", "oversized"],
)
def test_malformed_requests_get_a_4xx_with_errors_never_a_5xx(
    api_client, body, content_type, status
):
    response = api_client.post(CHECKOUT_URL, body, content_type=content_type)

    assert response.status_code == status
    assert set(response.json()) == {"errors"}
    assert not Subscription.objects.exists()


def test_subscribing_is_refused_while_back_in_stock_is_off(api_client, back_in_stock_on):
    back_in_stock_on.back_in_stock_enabled = False
    back_in_stock_on.save()

    response = post(api_client, US_NY)

    assert response.status_code == 403
    assert list(response.json()["errors"]) == ["backInStock"]
    assert not Subscription.objects.exists()
    assert not BackInStockProduct.objects.exists()


@pytest.mark.parametrize("extra_display_items", [0, 150])
def test_a_subscription_costs_a_fixed_number_of_queries_whatever_the_catalog_size(
    api_client, catalog, django_assert_max_num_queries, extra_display_items
):
    for _ in range(extra_display_items):
        SizeFactory(variant=DisplayItemFactory().variant)

    # The worst case (a new virtual product, variant and subscription) costs 7 queries and a
    # repeat 3 (the switch, the catalog lookup, the insert-or-find), one more where the request
    # names a language, as the README states; a database connection's first subscribe also
    # prepares the insert-or-find statement.
    with django_assert_max_num_queries(8):
        assert post(api_client, US_NY).status_code == 201
    with django_assert_max_num_queries(7):
        assert post(api_client, SE).status_code == 201
    with django_assert_max_num_queries(3):
        assert post(api_client, US_NY).status_code == 201
    # Naming a language adds the store's languages (kept apart from the catalog's answer).
    with django_assert_max_num_queries(4):
        assert post(api_client, {**US_NY, "language": "sv"}).status_code == 201


def test_with_the_process_cache_a_repeat_costs_only_its_insert_and_changes_arrive_in_time(
    api_client, catalog, django_assert_max_num_queries, settings
):
    from backinstock.models import Subscription
    from config.process_cache import recent_forget
    from klaviyo_sync.models import IntegrationSettings

    settings.STOREFRONT_CACHE_SECONDS = 0.5
    recent_forget()
    assert post(api_client, US_NY).status_code == 201
    with django_assert_max_num_queries(1):  # the switch and the catalog's answer are kept
        assert post(api_client, US_NY).status_code == 201

    IntegrationSettings.objects.update(back_in_stock_enabled=False)
    kept = post(api_client, {**US_NY, "email": "kept@example.com"})
    assert kept.status_code == 201  # within the half second: the switch is still remembered on
    time.sleep(0.6)
    refused = post(api_client, {**US_NY, "email": "late@example.com"})
    assert refused.status_code == 403
    assert not Subscription.objects.filter(email="late@example.com").exists()
    recent_forget()


def test_the_checkout_api_allows_browsers_only_from_configured_origins(api_client, settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://shop.example.com"]

    allowed = post(api_client, US_NY, HTTP_ORIGIN="https://shop.example.com")
    other = post(api_client, SE, HTTP_ORIGIN="https://evil.example.net")
    preflight = api_client.options(
        CHECKOUT_URL,
        HTTP_ORIGIN="https://shop.example.com",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type",
    )

    assert allowed["Access-Control-Allow-Origin"] == "https://shop.example.com"
    assert "Access-Control-Allow-Origin" not in other
    assert preflight.status_code == 200
    assert preflight["Access-Control-Allow-Origin"] == "https://shop.example.com"


# --- Shop API -------------------------------------------------------------------------------------


@pytest.fixture
def shop_key(settings) -> str:
    settings.SHOP_API_KEY = "shop-secret-key"
    return "shop-secret-key"


@pytest.mark.parametrize(
    ("configured", "header", "status"),
    [
        ("", "anything", 403),
        ("shop-secret-key", None, 403),
        ("shop-secret-key", "wrong-key", 403),
        ("shop-secret-key", "shop-secret-key-and-more", 403),
        ("shop-secret-key", "shop-secret-key", 201),
    ],
    ids=["closed", "missing", "wrong", "longer", "right"],
)
def test_the_shop_api_needs_the_configured_key(api_client, settings, configured, header, status):
    settings.SHOP_API_KEY = configured
    headers = {"HTTP_API_AUTHORIZATION": header} if header is not None else {}

    response = post(api_client, US_NY, url=SHOP_URL, **headers)

    assert response.status_code == status
    assert Subscription.objects.count() == (1 if status == 201 else 0)
    if status != 201:
        assert list(response.json()["errors"]) == ["authorization"]
        assert "shop-secret-key" not in response.content.decode()


def test_the_shop_api_validates_like_the_checkout_api(api_client, shop_key):
    response = post(
        api_client, {**US_NY, "item": "12366-99"}, url=SHOP_URL, HTTP_API_AUTHORIZATION=shop_key
    )

    assert response.status_code == 400
    assert response.json() == {"errors": {"item": "item 12366-99 not found"}}


def test_the_shop_api_lists_an_addresss_subscriptions_case_insensitively(api_client, shop_key):
    post(api_client, US_NY)
    post(api_client, {**SE, "email": "ANN@EXAMPLE.com", "language": "en"})
    post(api_client, {**SE, "email": "bob@example.com"})

    response = api_client.get(
        SHOP_LIST_URL, {"email": "Ann@Example.com"}, HTTP_API_AUTHORIZATION=shop_key
    )

    assert response.status_code == 200
    subscriptions = response.json()["subscriptions"]
    assert [{k: v for k, v in s.items() if k != "createdAt"} for s in subscriptions] == [
        {
            "item": "12366-23400",
            "product": "12366_US_NY",
            "variant": "12366_US_NY_23400",
            "shipTo": {"country": "US", "state": "NY"},
            "email": "ann@example.com",
            "language": "en",
            "status": "pending",
        },
        {
            "item": "12366-23400",
            "product": "12366_SE_00",
            "variant": "12366_SE_00_23400",
            "shipTo": {"country": "SE"},
            "email": "ann@example.com",
            "language": "en",
            "status": "pending",
        },
    ]
    assert all(s["createdAt"].endswith("Z") or "+" in s["createdAt"] for s in subscriptions)


def test_the_shop_api_erases_every_subscription_of_an_address_and_nothing_else(
    api_client, shop_key
):
    post(api_client, US_NY)
    post(api_client, SE)
    post(api_client, {**SE, "email": "bob@example.com"})

    response = api_client.delete(
        f"{SHOP_LIST_URL}?email=ANN@example.com", HTTP_API_AUTHORIZATION=shop_key
    )

    assert response.status_code == 200
    assert response.json() == {"deleted": 2}
    assert list(Subscription.objects.values_list("email", flat=True)) == ["bob@example.com"]


@pytest.mark.parametrize("method", ["get", "delete"])
def test_listing_and_erasing_need_an_email_and_the_key(api_client, shop_key, method):
    without_email = getattr(api_client, method)(SHOP_LIST_URL, HTTP_API_AUTHORIZATION=shop_key)
    without_key = getattr(api_client, method)(f"{SHOP_LIST_URL}?email=ann@example.com")

    assert without_email.status_code == 400
    assert list(without_email.json()["errors"]) == ["email"]
    assert without_key.status_code == 403


# --- Concurrency (PostgreSQL) ---------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_session_that_lost_the_prepared_insert_prepares_it_again(
    api_client, catalog, back_in_stock_on
):
    """A pooler that resets sessions between transactions drops prepared statements."""
    assert post(api_client, SE).status_code == 201
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")

    again = post(api_client, {**SE, "email": "bob@example.com"})

    assert again.status_code == 201
    assert Subscription.objects.filter(email="bob@example.com").exists()


@pytest.mark.django_db(transaction=True)
def test_a_session_that_has_the_statement_already_uses_it(api_client, catalog, back_in_stock_on):
    """A pooler's server session may hold the statement for a connection this process has not
    prepared it on: the PREPARE fails, and the request goes on."""
    from backinstock import services

    assert post(api_client, SE).status_code == 201
    services._prepared_on.clear()

    again = post(api_client, {**SE, "email": "bob@example.com"})

    assert again.status_code == 201
    assert Subscription.objects.filter(email="bob@example.com").exists()
    # An EXECUTE that failed would have taken the connection off the list.
    assert connection.connection in services._prepared_on


@pytest.mark.django_db(transaction=True)
def test_concurrent_identical_requests_create_one_subscription(catalog, back_in_stock_on):
    from rest_framework.test import APIClient

    threads_count = 8
    barrier = threading.Barrier(threads_count)
    statuses: list[int] = []

    def subscribe(index: int) -> None:
        client = APIClient()
        barrier.wait()
        try:
            email = "ann@example.com" if index % 2 else "ANN@example.com"
            statuses.append(post(client, {**US_NY, "email": email}).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=subscribe, args=(i,)) for i in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert statuses == [201] * threads_count
    assert Subscription.objects.count() == 1
    assert BackInStockProduct.objects.count() == 1
    assert BackInStockVariant.objects.count() == 1


def test_the_request_path_makes_no_dns_lookup_and_no_outside_connection(api_client, monkeypatch):
    import socket

    looked_up: list[str] = []
    real_getaddrinfo = socket.getaddrinfo

    def guarded_getaddrinfo(host, *args, **kwargs):
        if host not in {"127.0.0.1", "localhost", "::1"}:
            looked_up.append(host)
            raise OSError("no network in the request path")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", guarded_getaddrinfo)

    response = post(api_client, {**US_NY, "email": "ann@mail.example.org"})

    assert response.status_code == 201
    assert looked_up == []


def test_the_timing_does_not_tell_a_repeat_from_a_new_subscription(api_client, settings):
    """New and repeated subscriptions do the same work; their times overlap.

    Interleaved so that drift on a busy machine hits both alike; the medians must be close.
    """
    import statistics
    import time

    settings.SUBSCRIBE_RATE_PER_CLIENT = "none"
    settings.SUBSCRIBE_RATE_PER_EMAIL = "none"
    post(api_client, {**SE, "email": "warm-up@example.com"})
    post(api_client, {**SE, "email": "repeat@example.com"})
    new_times, repeat_times = [], []
    for index in range(40):
        for email, times in (
            (f"new{index}@example.com", new_times),
            ("repeat@example.com", repeat_times),
        ):
            started = time.perf_counter()
            response = post(api_client, {**SE, "email": email})
            times.append(time.perf_counter() - started)
            assert response.status_code == 201

    new, repeat = statistics.median(new_times), statistics.median(repeat_times)
    assert abs(new - repeat) <= 0.25 * max(new, repeat) + 0.002, (new, repeat)


# --- One address is one person (CONTRACT §3, §4; backinstock.emails) ----------------------------


def test_a_dotted_capital_i_is_a_clear_400_not_a_500_after_the_dotless_address(
    api_client, shop_key
):
    assert post(api_client, {**SE, "email": "ivan@example.com"}).status_code == 201

    responses = [post(api_client, {**SE, "email": "İvan@example.com"}) for _ in range(2)]

    assert [r.status_code for r in responses] == [400, 400]
    assert list(responses[0].json()["errors"]) == ["email"]
    assert "before the @-sign" in responses[0].json()["errors"]["email"]
    assert list(Subscription.objects.values_list("email", flat=True)) == ["ivan@example.com"]


def test_a_dotted_address_never_absorbs_the_real_shopper_s_request(api_client):
    refused = post(api_client, {**SE, "email": "dİana@example.com"})
    accepted = post(api_client, {**SE, "email": "diana@example.com"})

    assert (refused.status_code, accepted.status_code) == (400, 201)
    assert list(Subscription.objects.values_list("email", flat=True)) == ["diana@example.com"]


def test_a_subscription_stored_with_a_non_ascii_local_part_can_be_listed_and_erased(
    api_client, shop_key, catalog
):
    assert post(api_client, {**SE, "email": "İda@example.com"}).status_code == 400
    post(api_client, {**SE, "email": "ida@example.com"})
    legacy = Subscription.objects.get()
    Subscription.objects.create(
        variant=legacy.variant, email="i\u0307da@example.com", language=legacy.language
    )  # as migration 0004 leaves an address stored before non-ASCII local parts were refused

    listed = api_client.get(
        SHOP_LIST_URL, {"email": "İda@Example.com"}, HTTP_API_AUTHORIZATION=shop_key
    )
    erased = api_client.delete(
        f"{SHOP_LIST_URL}?email=İda@Example.com", HTTP_API_AUTHORIZATION=shop_key
    )

    assert [s["email"] for s in listed.json()["subscriptions"]] == ["i\u0307da@example.com"]
    assert erased.json() == {"deleted": 1}
    assert list(Subscription.objects.values_list("email", flat=True)) == ["ida@example.com"]


def test_an_internationalised_domain_and_its_ascii_form_are_one_person(api_client, shop_key):
    post(api_client, {**SE, "email": "idn@bücher.de"})
    post(api_client, {**SE, "email": "idn@xn--bcher-kva.de"})

    assert list(Subscription.objects.values_list("email", flat=True)) == ["idn@xn--bcher-kva.de"]
    erased = api_client.delete(
        f"{SHOP_LIST_URL}?email=IDN@BÜCHER.de", HTTP_API_AUTHORIZATION=shop_key
    )
    assert erased.json() == {"deleted": 1}
    assert not Subscription.objects.exists()


def test_the_kelvin_sign_is_the_letter_k_for_subscribing_and_erasing(api_client, shop_key):
    post(api_client, {**SE, "email": "kate@example.com"})
    post(api_client, {**SE, "email": "\u212aate@example.com"})
    post(api_client, {**SE, "email": "bob@example.com"})

    erased = api_client.delete(
        f"{SHOP_LIST_URL}?email=\u212aate@example.com", HTTP_API_AUTHORIZATION=shop_key
    )

    assert erased.json() == {"deleted": 1}
    assert list(Subscription.objects.values_list("email", flat=True)) == ["bob@example.com"]


@pytest.mark.parametrize(
    "email",
    [
        "a\u200bnn@example.com",
        "an\u00adn@example.com",
        "a\x1bnn@example.com",
        "ann@exa\u200bmple.com",
        "ann@[127.0.0.1]",
        "ann@localhost",
    ],
)
def test_invisible_characters_ip_literals_and_dotless_domains_are_a_400_on_email(
    api_client, shop_key, email
):
    subscribed = post(api_client, {**SE, "email": email})
    listed = api_client.get(SHOP_LIST_URL, {"email": email}, HTTP_API_AUTHORIZATION=shop_key)

    for response in (subscribed, listed):
        assert response.status_code == 400
        assert list(response.json()["errors"]) == ["email"]
    assert not Subscription.objects.exists()


@pytest.mark.filterwarnings("ignore::hypothesis.errors.NonInteractiveExampleWarning")
def test_any_text_as_email_is_a_201_or_a_400_on_email_and_a_refusal_changes_nothing(
    api_client, shop_key, settings
):
    from hypothesis import HealthCheck, given
    from hypothesis import settings as hypothesis_settings
    from hypothesis import strategies as st

    settings.SUBSCRIBE_RATE_PER_CLIENT = settings.SUBSCRIBE_RATE_PER_EMAIL = "none"
    texts = st.one_of(
        st.text(max_size=60),
        st.builds(lambda a, b: f"{a}@{b}.com", st.text(max_size=20), st.text(max_size=20)),
    )

    @hypothesis_settings(
        max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )
    @given(email=texts)
    def check(email):
        before = list(Subscription.objects.values_list("id", "email").order_by("id"))
        response = post(api_client, {**SE, "email": email})
        after = list(Subscription.objects.values_list("id", "email").order_by("id"))
        assert response.status_code in (201, 400), response.content
        if response.status_code == 400:
            assert list(response.json()["errors"]) == ["email"]
            assert after == before
        for method in (api_client.get, api_client.delete):
            looked_up = method(SHOP_LIST_URL, {"email": email}, HTTP_API_AUTHORIZATION=shop_key)
            assert looked_up.status_code in (200, 400), looked_up.content
            if looked_up.status_code == 400:
                assert list(looked_up.json()["errors"]) == ["email"]

    check()


def test_erasing_with_deletion_of_the_klaviyo_profile_answers_requested(api_client, shop_key):
    from backinstock.models import ErasureRecord, ProfileDeletionRequest

    post(api_client, SE)

    response = api_client.delete(
        f"{SHOP_LIST_URL}?email=Ann@example.com&deleteKlaviyoProfile=true",
        HTTP_API_AUTHORIZATION=shop_key,
    )

    assert response.status_code == 200
    assert response.json() == {"deleted": 1, "klaviyoProfileDeletion": "requested"}
    request = ProfileDeletionRequest.objects.get()
    assert request.email == "ann@example.com"
    assert request.erasure == ErasureRecord.objects.get(klaviyo_deletion_requested=True)


def test_a_bad_delete_klaviyo_profile_value_is_a_400_and_erases_nothing(api_client, shop_key):
    post(api_client, SE)

    response = api_client.delete(
        f"{SHOP_LIST_URL}?email=ann@example.com&deleteKlaviyoProfile=yes-please",
        HTTP_API_AUTHORIZATION=shop_key,
    )

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["deleteKlaviyoProfile"]
    assert Subscription.objects.count() == 1


@pytest.mark.parametrize(
    "item", ["12366-2³", "¹2366-23400", "١٢٣٦٦-23400", "12366-23_400", "+12366-23400"]
)
def test_an_item_id_that_is_not_ascii_digits_is_not_found_never_a_500(api_client, item):
    response = post(api_client, {**SE, "item": item})

    assert response.status_code == 400
    assert response.json() == {"errors": {"item": f"item {item} not found"}}
    assert not Subscription.objects.exists()


# --- The plain parse of the usual body agrees with the serializer -------------------------------


_USUAL = {"item": "12366-23400", "email": "ann@example.com", "language": "sv"}
_USUAL_SHIP_TO = {"country": "US", "state": "NY"}
_MAX_LENGTHS = {"item": 100, "email": 254, "language": 10, "country": 10, "state": 10}


def _odd(usual: str, max_length: int) -> st.SearchStrategy[object]:
    """Values of one field: around its length limit, blank, padded, odd or not text at all."""
    around_limit = st.integers(max_length - 2, max_length + 2).flatmap(
        lambda size: st.text(min_size=size, max_size=size)
    )
    return st.one_of(
        st.sampled_from(
            [f" {usual} ", usual.lower(), "", "  ", "\x00", "a\ud800", "\udfffb", "\u2003x"]
        ),
        around_limit,
        st.text(max_size=8),
        st.one_of(st.none(), st.integers(), st.floats(), st.booleans(), st.just([])),
    )


@hypothesis_settings(
    max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data(), odd_fields=st.sets(st.sampled_from(sorted(_MAX_LENGTHS)), min_size=1))
def test_the_plain_parse_takes_only_what_the_serializer_takes_and_as_it_would(data, odd_fields):
    """The usual body skips DRF's serializer (``_subscribe_input_plain``); whatever it accepts,
    the serializer must accept with the same values, so every error stays the serializer's. One
    or more fields are odd (or absent), the others usual."""
    values = {**_USUAL, **_USUAL_SHIP_TO}
    for name in sorted(odd_fields):
        if data.draw(st.booleans(), label=f"{name} absent"):
            del values[name]
        else:
            values[name] = data.draw(_odd(str(values[name]), _MAX_LENGTHS[name]), label=name)
    ship_to = {key: values.pop(key) for key in ("country", "state") if key in values}
    body = {**values, "shipTo": ship_to}

    plain = _subscribe_input_plain(body)

    serializer = SubscribeInputSerializer(data=body)
    if plain is not None:
        assert serializer.is_valid(), serializer.errors
        assert plain == dict(serializer.validated_data)


def test_the_plain_parse_takes_the_usual_bodies():
    usual = {"item": "12366-23400", "shipTo": {"country": "se"}, "email": " Ann@Example.com "}
    assert _subscribe_input_plain(usual) == {
        "item": "12366-23400",
        "email": "Ann@Example.com",
        "shipTo": ShipTo(country="SE", state=None),
    }
    with_state = {**usual, "shipTo": {"country": "US", "state": "ny"}, "language": ""}
    assert _subscribe_input_plain(with_state)["shipTo"] == ShipTo(country="US", state="NY")
    assert _subscribe_input_plain(with_state)["language"] == ""


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("deleted", ["language named", "country's language", "store default"])
def test_a_language_deleted_while_a_process_keeps_the_catalog_is_never_a_500(
    api_client, catalog, settings, deleted
):
    """Within STOREFRONT_CACHE_SECONDS of an operator deleting a language, the kept answers
    still name it; the insert's foreign key refuses it, and the request is answered from the
    catalog as it is now: the 400 or the 201 it gets once the kept answers expire."""
    from config.process_cache import recent_forget

    settings.STOREFRONT_CACHE_SECONDS = 60
    recent_forget()
    finnish = LanguageFactory(code="fi", name="Finnish")
    if deleted == "store default":
        catalog.english.is_default = False
        catalog.english.save()
        finnish.is_default = True
        finnish.save()
        catalog.sweden.language = None
        catalog.sweden.save()
    elif deleted == "country's language":
        catalog.sweden.language = finnish
        catalog.sweden.save()
    body = {**SE, "language": "fi"} if deleted == "language named" else SE
    warm = post(api_client, {**body, "email": "not an address"})
    assert warm.status_code == 400 and list(warm.json()["errors"]) == ["email"]

    finnish.delete()
    if deleted == "store default":
        catalog.english.is_default = True
        catalog.english.save()
    answer = post(api_client, body)

    if deleted == "language named":
        assert answer.status_code == 400
        assert answer.json() == {"errors": {"language": "language not found"}}
        assert not Subscription.objects.exists()
    else:
        assert answer.status_code == 201
        assert Subscription.objects.get().language == catalog.english
    recent_forget()


@pytest.mark.django_db(transaction=True)
def test_a_request_refused_after_the_stale_answer_takes_no_place_in_its_addresss_window(
    api_client, catalog, settings
):
    from config.process_cache import recent_forget

    settings.STOREFRONT_CACHE_SECONDS = 60
    settings.SUBSCRIBE_RATE_PER_EMAIL = "2/hour"
    recent_forget()
    finnish = LanguageFactory(code="fi", name="Finnish")
    california = {**US_NY, "shipTo": {"country": "US", "state": "CA"}, "language": "fi"}
    assert post(api_client, {**california, "email": "not an address"}).status_code == 400
    finnish.delete()

    refused = post(api_client, california)
    answers = [post(api_client, body).status_code for body in (SE, US_NY)]

    assert refused.json() == {"errors": {"language": "language not found"}}
    assert answers == [201, 201]
    recent_forget()


@pytest.mark.django_db(transaction=True)
def test_a_size_deleted_while_its_answer_is_kept_leaves_no_product_behind(
    api_client, catalog, settings
):
    from config.process_cache import recent_forget

    settings.STOREFRONT_CACHE_SECONDS = 60
    recent_forget()
    size = SizeFactory(id=23401, variant=catalog.size.variant, name="L")
    body = {**SE, "item": "12366-23401"}
    assert post(api_client, {**body, "email": "not an address"}).status_code == 400
    size.delete()

    answer = post(api_client, body)

    assert answer.json() == {"errors": {"item": "item 12366-23401 not found"}}
    assert not BackInStockProduct.objects.exists()
    recent_forget()
