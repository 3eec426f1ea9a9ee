"""Throttles of the subscribe endpoints, and their behaviour when Redis is down."""

import re
import threading
import time
from collections.abc import Iterator

import pytest
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from rest_framework.test import APIClient

from backinstock import throttling
from backinstock.models import Subscription
from backinstock.throttling import (
    SubscribeThrottled,
    client_throttled,
    rate_parse,
    subscribe_throttles_take,
)
from shop.models import Size
from tests.backinstock.conftest import assert_waits_to_the_end_of_its_window
from tests.factories import SizeFactory
from tests.redis_server import PrivateRedis

CHECKOUT_URL = "/api/checkout-api/back-in-stock-subscription"
SHOP_URL = "/api/shop-api/back-in-stock-subscription"

pytestmark = pytest.mark.usefixtures("catalog", "back_in_stock_on")


SE_BODY = {"item": "12366-23400", "shipTo": {"country": "SE"}}
# Three back-in-stock variants of one size: three subscriptions for one address.
THREE_LOCATIONS = [
    {"country": "SE"},
    {"country": "US", "state": "NY"},
    {"country": "US", "state": "CA"},
]


def subscribe(client, email="ann@example.com", address="10.0.0.1", item="12366-23400", **extra):
    body = {**SE_BODY, "item": item, "email": email}
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
    assert_waits_to_the_end_of_its_window(answers[3]["Retry-After"], period=60)
    assert list(answers[3].json()["errors"]) == ["throttle"]
    assert other_client.status_code == 201
    assert Subscription.objects.count() == 4


def test_one_address_is_throttled_whoever_sends_it(api_client, settings):
    settings.SUBSCRIBE_RATE_PER_EMAIL = "2/hour"

    answers = [
        api_client.post(
            CHECKOUT_URL,
            {**SE_BODY, "shipTo": ship_to, "email": "Ann@Example.com"},
            format="json",
            REMOTE_ADDR=f"10.0.1.{i}",
        )
        for i, ship_to in enumerate(THREE_LOCATIONS)
    ]
    other_address = subscribe(api_client, email="bob@example.com", address="10.0.1.9")

    assert [a.status_code for a in answers] == [201, 201, 429]
    assert_waits_to_the_end_of_its_window(answers[2]["Retry-After"], period=3600)
    assert other_address.status_code == 201


def test_the_shop_api_is_throttled_per_address_but_not_per_client(api_client, settings):
    settings.SHOP_API_KEY = "key"
    settings.SUBSCRIBE_RATE_PER_CLIENT = "1/min"
    settings.SUBSCRIBE_RATE_PER_EMAIL = "2/hour"

    def shop_post(email, ship_to=SE_BODY["shipTo"]):
        body = {**SE_BODY, "shipTo": ship_to, "email": email}
        return api_client.post(
            SHOP_URL, body, format="json", HTTP_API_AUTHORIZATION="key"
        ).status_code

    assert [shop_post(f"s{i}@example.com") for i in range(3)] == [201, 201, 201]
    assert [shop_post("ann@example.com", where) for where in THREE_LOCATIONS] == [201, 201, 429]


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
    assert_waits_to_the_end_of_its_window(answers[-1]["Retry-After"], period=3600)
    assert Subscription.objects.count() == 10  # uniqueness keeps the whole address
    assert Subscription.objects.filter(email="carol+1@example.com").exists()


def test_gmail_s_dot_aliases_of_one_mailbox_are_throttled_as_one_address(api_client, settings):
    settings.SUBSCRIBE_RATE_PER_EMAIL = "2/hour"
    aliases = ["ann@gmail.com", "a.nn@gmail.com", "a.n.n@googlemail.com"]

    answers = [
        api_client.post(
            CHECKOUT_URL,
            {**SE_BODY, "shipTo": ship_to, "email": alias},
            format="json",
            REMOTE_ADDR=f"10.0.6.{i}",
        )
        for i, (ship_to, alias) in enumerate(zip(THREE_LOCATIONS, aliases, strict=True))
    ]

    assert [a.status_code for a in answers] == [201, 201, 429]
    # The stored identity keeps the address as given (CONTRACT §3): only the throttle folds it.
    assert sorted(Subscription.objects.values_list("email", flat=True)) == [
        "a.nn@gmail.com",
        "ann@gmail.com",
    ]


def test_replaying_a_subscription_does_not_use_up_its_address_s_allowance(api_client, settings):
    settings.SUBSCRIBE_RATE_PER_EMAIL = "3/hour"
    other_size = SizeFactory(id=23401, variant=Size.objects.get(id=23400).variant, name="L")
    first = subscribe(api_client, email="ann@example.com", address="10.0.5.1")

    replays = [
        subscribe(api_client, email="Ann@Example.com", address=f"10.0.5.{i}") for i in range(2, 22)
    ]
    own = [
        subscribe(api_client, email="ann@example.com", address="10.0.5.99", item=item)
        for item in ("12366-23401", "12366-23400")  # one new, one a repeat
    ]
    in_the_us = [
        api_client.post(
            CHECKOUT_URL,
            {**SE_BODY, "shipTo": {"country": "US", "state": state}, "email": "ann@example.com"},
            format="json",
            REMOTE_ADDR="10.0.5.98",
        )
        for state in ("NY", "CA")
    ]

    assert first.status_code == 201
    assert {answer.status_code for answer in replays} == {201}
    assert [answer.status_code for answer in own] == [201, 201]
    # The third new subscription reaches the limit, which still stops a fourth.
    assert [answer.status_code for answer in in_the_us] == [201, 429]
    assert Subscription.objects.filter(variant__size=other_size).exists()
    assert Subscription.objects.count() == 3


def test_over_its_limit_an_address_gets_429_for_a_repeat_as_for_a_new_size(api_client, settings):
    """Otherwise a 201 for a repeat and a 429 for a new size would tell what it is subscribed to."""
    settings.SUBSCRIBE_RATE_PER_EMAIL = "2/hour"
    SizeFactory(id=23401, variant=Size.objects.get(id=23400).variant, name="L")
    SizeFactory(id=23402, variant=Size.objects.get(id=23400).variant, name="XL")
    new = [
        subscribe(api_client, email="ann@example.com", item=item)
        for item in ("12366-23400", "12366-23401", "12366-23402")
    ]
    repeat = subscribe(api_client, email="ann@example.com", item="12366-23400")

    assert [answer.status_code for answer in new] == [201, 201, 429]
    assert repeat.status_code == 429
    # The same answer; its "available in N seconds" may have moved on by a second meanwhile.
    assert re.sub(r"\d+", "N", repeat.content.decode()) == re.sub(
        r"\d+", "N", new[2].content.decode()
    )
    assert abs(int(repeat["Retry-After"]) - int(new[2]["Retry-After"])) <= 1
    assert Subscription.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_concurrent_flood_of_sizes_for_one_address_creates_no_more_than_its_limit(
    catalog, back_in_stock_on, settings
):
    settings.SUBSCRIBE_RATE_PER_EMAIL = "3/hour"
    settings.SUBSCRIBE_RATE_PER_CLIENT = "none"
    threads_count = 8
    for index in range(1, threads_count):
        SizeFactory(id=23400 + index, variant=catalog.size.variant, name=f"S{index}")
    barrier = threading.Barrier(threads_count)
    statuses: list[int] = []

    def flood(index: int) -> None:
        barrier.wait()
        try:
            answer = subscribe(APIClient(), email="ann@example.com", item=f"12366-{23400 + index}")
            statuses.append(answer.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=flood, args=(i,)) for i in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses) == [201] * 3 + [429] * (threads_count - 3)
    assert Subscription.objects.count() == 3


def count_client(client: str) -> None:
    """One request of ``client`` that never reaches the per-address step."""
    with client_throttled(client=client) as throttle:
        throttle.count()


def test_the_per_client_throttle_can_be_applied_outside_the_rest_api(settings):
    settings.SUBSCRIBE_RATE_PER_CLIENT = "2/min"

    count_client("10.0.4.1")
    count_client("10.0.4.1")
    with pytest.raises(SubscribeThrottled) as over_client:
        count_client("10.0.4.1")
    count_client("10.0.4.2")

    assert 1 <= over_client.value.wait <= 60
    assert over_client.value.status_code == 429


def test_a_request_refused_before_the_address_step_is_counted_against_its_client(settings):
    settings.SUBSCRIBE_RATE_PER_CLIENT = "2/min"

    for _ in range(2):
        with pytest.raises(ValueError), client_throttled(client="10.0.4.3"):
            raise ValueError("invalid input")
    with pytest.raises(SubscribeThrottled) as over_client, client_throttled(client="10.0.4.3"):
        raise ValueError("invalid input")

    assert isinstance(over_client.value.__cause__, ValueError)


def test_a_refused_client_is_refused_by_its_process_without_asking_redis(settings):
    settings.SUBSCRIBE_RATE_PER_CLIENT = "1/min"
    count_client("10.0.4.4")
    with pytest.raises(SubscribeThrottled):
        count_client("10.0.4.4")
    cache.clear()  # Redis forgets the count: only the process's memory can refuse now

    with pytest.raises(SubscribeThrottled) as again, client_throttled(client="10.0.4.4"):
        pytest.fail("the block must not run for a client refused in this window")

    assert 0 < again.value.wait <= 60
    count_client("10.0.4.5")  # other clients are untouched


def test_an_address_window_counts_distinct_subscriptions_once_each(settings):
    settings.SUBSCRIBE_RATE_PER_EMAIL = "2/hour"
    dan = "dan@example.com"

    for _ in range(5):  # replays of one subscription, or a failed insert retried
        subscribe_throttles_take(email=dan, variant="12366_SE_00_23400", client_throttle=None)
    subscribe_throttles_take(
        email="dan+1@example.com", variant="12366_SE_00_23400", client_throttle=None
    )
    for variant in ("12366_SE_00_23400", "12366_DE_00_23400"):  # full: a repeat as a new one
        with pytest.raises(SubscribeThrottled) as over_email:
            subscribe_throttles_take(email=dan, variant=variant, client_throttle=None)
        assert 0 < over_email.value.wait <= 3600
    subscribe_throttles_take(
        email="eve@example.com", variant="12366_SE_00_23400", client_throttle=None
    )


def test_a_client_over_its_limit_leaves_the_address_window_alone(settings):
    settings.SUBSCRIBE_RATE_PER_CLIENT = "1/min"
    settings.SUBSCRIBE_RATE_PER_EMAIL = "1/hour"
    count_client("10.0.4.6")

    with pytest.raises(SubscribeThrottled), client_throttled(client="10.0.4.6") as throttle:
        subscribe_throttles_take(email="fay@example.com", variant="v1", client_throttle=throttle)
    subscribe_throttles_take(email="fay@example.com", variant="v2", client_throttle=None)


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
    api_client, settings, private_redis, caplog, monkeypatch
):
    monkeypatch.setattr(throttling, "CACHE_OUTAGE_PAUSE_SECONDS", 0.5)
    settings.SUBSCRIBE_RATE_PER_CLIENT = "2/min"
    assert [subscribe(api_client, email=f"a{i}@example.com").status_code for i in range(3)] == [
        201,
        201,
        429,
    ]

    private_redis.stop()
    started = time.monotonic()
    while_down = [
        subscribe(api_client, email=f"b{i}@example.com", address="10.0.0.2").status_code
        for i in range(5)
    ]
    elapsed = time.monotonic() - started
    # The client refused in this window stays refused: its process remembers it.
    still_refused = subscribe(api_client, email="b9@example.com").status_code

    assert while_down == [201] * 5
    assert still_refused == 429
    assert elapsed < 5, "a Redis outage must not make each request wait long"
    assert "cache unreachable" in caplog.text
    assert Subscription.objects.filter(email__startswith="b").count() == 5
    count_client("10.0.0.9")  # fails open too
    subscribe_throttles_take(email="b0@example.com", variant="v", client_throttle=None)

    private_redis.start()
    time.sleep(0.6)  # the process asks the cache again once its outage pause is over
    back = [
        subscribe(api_client, email=f"c{i}@example.com", address="10.0.0.3").status_code
        for i in range(3)
    ]
    assert back == [201, 201, 429]


def test_while_redis_hangs_only_one_request_per_process_waits_for_it(
    api_client, settings, private_redis
):
    """A cache that accepts connections and never answers costs one socket timeout (250 ms),
    then the process lets requests through without asking it for a while."""
    import redis

    settings.SUBSCRIBE_RATE_PER_CLIENT = "100/min"
    assert subscribe(api_client, email="first@example.com").status_code == 201
    redis.Redis.from_url(f"{private_redis.url}/0").execute_command("CLIENT", "PAUSE", 4000, "ALL")

    times = []
    for index in range(6):
        started = time.monotonic()
        answer = subscribe(api_client, email=f"h{index}@example.com")
        times.append(time.monotonic() - started)
        assert answer.status_code == 201

    assert times[0] >= 0.25  # the one that found the cache hanging: its socket timeout
    assert max(times[1:]) < 0.2, times  # none of the others waits for one


@pytest.mark.parametrize("backend", ["redis", "local memory"])
def test_a_place_given_back_frees_the_window_and_a_repeat_has_none_to_give(settings, backend):
    if backend == "local memory":
        settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    settings.SUBSCRIBE_RATE_PER_EMAIL = "2/hour"
    cache.clear()

    def take(variant):
        return subscribe_throttles_take(
            email="ann@example.com", variant=variant, client_throttle=None
        )

    first, repeat, second = take("a"), take("a"), take("b")
    with pytest.raises(SubscribeThrottled):
        take("c")

    assert first is not None and second is not None and repeat is None
    throttling.subscribe_throttle_give_back(second)
    assert take("c") is not None
    with pytest.raises(SubscribeThrottled):
        take("b")
    cache.clear()
