"""Throttles of the subscribe endpoints, and their behaviour when Redis is down."""

import time
from collections.abc import Iterator

import pytest
from django.core.exceptions import ImproperlyConfigured

from backinstock.models import Subscription
from backinstock.throttling import SubscribeThrottled, rate_parse, subscribe_throttles_check
from tests.redis_server import PrivateRedis

CHECKOUT_URL = "/api/checkout-api/back-in-stock-subscription"
SHOP_URL = "/api/shop-api/back-in-stock-subscription"

pytestmark = pytest.mark.usefixtures("catalog", "back_in_stock_on")


def subscribe(client, email="ann@example.com", address="10.0.0.1", item="12366-23400", **extra):
    body = {"item": item, "shipTo": {"country": "SE"}, "email": email}
    return client.post(CHECKOUT_URL, body, format="json", REMOTE_ADDR=address, **extra)


@pytest.mark.parametrize(
    ("rate", "expected"),
    [
        ("30/min", (30, 60)),
        ("30/minute", (30, 60)),
        ("10/hour", (10, 3600)),
        ("5/s", (5, 1)),
        ("100/day", (100, 86400)),
        ("2/hours", (2, 3600)),
        ("none", None),
        ("NONE", None),
    ],
)
def test_rates_are_read_as_count_per_period(rate, expected):
    assert rate_parse(rate) == expected


@pytest.mark.parametrize("rate", ["30", "x/min", "0/min", "30/fortnight", "-1/min"])
def test_a_malformed_rate_is_refused_clearly(rate):
    with pytest.raises(ImproperlyConfigured, match="N/second"):
        rate_parse(rate)


def test_one_client_is_throttled_with_retry_after(api_client, settings):
    settings.SUBSCRIBE_RATE_PER_CLIENT = "3/min"

    answers = [subscribe(api_client, email=f"s{i}@example.com") for i in range(4)]
    other_client = subscribe(api_client, email="other@example.com", address="10.0.0.2")

    assert [a.status_code for a in answers] == [201, 201, 201, 429]
    assert 1 <= int(answers[3]["Retry-After"]) <= 60
    assert list(answers[3].json()["errors"]) == ["throttle"]
    assert other_client.status_code == 201
    assert Subscription.objects.count() == 4


def test_one_address_is_throttled_whoever_sends_it(api_client, settings):
    settings.SUBSCRIBE_RATE_PER_EMAIL = "2/hour"

    answers = [
        subscribe(api_client, email="Ann@Example.com", address=f"10.0.1.{i}") for i in range(3)
    ]
    other_address = subscribe(api_client, email="bob@example.com", address="10.0.1.9")

    assert [a.status_code for a in answers] == [201, 201, 429]
    assert int(answers[2]["Retry-After"]) > 60
    assert other_address.status_code == 201


def test_the_shop_api_is_throttled_per_address_but_not_per_client(api_client, settings):
    settings.SHOP_API_KEY = "key"
    settings.SUBSCRIBE_RATE_PER_CLIENT = "1/min"
    settings.SUBSCRIBE_RATE_PER_EMAIL = "2/hour"
    body = {"item": "12366-23400", "shipTo": {"country": "SE"}}

    def shop_post(email):
        return api_client.post(
            SHOP_URL, {**body, "email": email}, format="json", HTTP_API_AUTHORIZATION="key"
        ).status_code

    assert [shop_post(f"s{i}@example.com") for i in range(3)] == [201, 201, 201]
    assert [shop_post("ann@example.com") for _ in range(3)] == [201, 201, 429]


def test_invalid_requests_naming_an_address_do_not_lock_its_owner_out(api_client, settings):
    settings.SUBSCRIBE_RATE_PER_EMAIL = "10/hour"
    bogus = [
        subscribe(api_client, email="victim@example.com", address=f"10.0.2.{i}", item="1-1")
        for i in range(10)
    ]

    own = subscribe(api_client, email="Victim@Example.com", address="10.0.2.99")

    assert {answer.status_code for answer in bogus} == {400}
    assert own.status_code == 201
    assert list(Subscription.objects.values_list("email", flat=True)) == ["victim@example.com"]


def test_plus_tags_of_one_mailbox_are_throttled_as_one_address(api_client, settings):
    settings.SUBSCRIBE_RATE_PER_EMAIL = "10/hour"

    answers = [
        subscribe(api_client, email=f"carol+{i}@example.com", address=f"10.0.3.{i}")
        for i in range(1, 13)
    ]

    assert [a.status_code for a in answers] == [201] * 10 + [429, 429]
    assert int(answers[-1]["Retry-After"]) > 60
    assert Subscription.objects.count() == 10  # uniqueness keeps the whole address
    assert Subscription.objects.filter(email="carol+1@example.com").exists()


def test_the_throttles_can_be_applied_outside_the_rest_api(settings):
    settings.SUBSCRIBE_RATE_PER_CLIENT = "2/min"
    settings.SUBSCRIBE_RATE_PER_EMAIL = "3/hour"

    subscribe_throttles_check(client="10.0.4.1")
    subscribe_throttles_check(client="10.0.4.1")
    with pytest.raises(SubscribeThrottled) as over_client:
        subscribe_throttles_check(client="10.0.4.1")
    for i in range(3):
        subscribe_throttles_check(email=f"dan+{i}@example.com")
    with pytest.raises(SubscribeThrottled) as over_email:
        subscribe_throttles_check(client="10.0.4.2", email="dan@example.com")

    assert 1 <= over_client.value.wait <= 60
    assert 60 < over_email.value.wait <= 3600
    assert over_email.value.status_code == 429


def test_none_turns_a_throttle_off(api_client, settings):
    settings.SUBSCRIBE_RATE_PER_CLIENT = "none"
    settings.SUBSCRIBE_RATE_PER_EMAIL = "none"

    assert {subscribe(api_client).status_code for _ in range(15)} == {201}


# --- Redis down -----------------------------------------------------------------------------------


@pytest.fixture
def private_redis(settings) -> Iterator[PrivateRedis]:
    """A Redis of this test's own, so stopping it touches nothing shared."""
    redis_server = PrivateRedis().start()
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"{redis_server.url}/0",
            "OPTIONS": {"socket_connect_timeout": 0.25, "socket_timeout": 0.25},
        }
    }
    # Django's setting_changed handler rebuilds the cache connections for the new CACHES.
    yield redis_server
    redis_server.stop()


def test_subscribing_keeps_working_and_logs_while_redis_is_down(
    api_client, settings, private_redis, caplog
):
    settings.SUBSCRIBE_RATE_PER_CLIENT = "2/min"
    assert [subscribe(api_client, email=f"a{i}@example.com").status_code for i in range(3)] == [
        201,
        201,
        429,
    ]

    private_redis.stop()
    started = time.monotonic()
    while_down = [subscribe(api_client, email=f"b{i}@example.com").status_code for i in range(5)]
    elapsed = time.monotonic() - started

    assert while_down == [201] * 5
    assert elapsed < 5, "a Redis outage must not make each request wait long"
    assert "cache unreachable" in caplog.text
    assert Subscription.objects.filter(email__startswith="b").count() == 5
    subscribe_throttles_check(client="10.0.0.1", email="b0@example.com")  # fails open too

    private_redis.start()
    back = [subscribe(api_client, email=f"c{i}@example.com").status_code for i in range(3)]
    assert back == [201, 201, 429]
