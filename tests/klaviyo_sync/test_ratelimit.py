"""The shared outbound rate limiter, on the real Redis."""

import threading
import time
import uuid

import pytest
from django.conf import settings

from klaviyo_sync.ratelimit import TRANSIT_MARGIN_SECONDS, RateLimiter


@pytest.fixture
def prefix() -> str:
    return f"test-rate-{uuid.uuid4().hex}"


def test_the_burst_limit_makes_the_next_call_wait_for_the_second_to_pass(prefix):
    limiter = RateLimiter(limits={"c": (5, 100)}, redis_url=settings.REDIS_URL, key_prefix=prefix)

    stamps = []
    for _ in range(6):
        limiter.acquire("c")
        stamps.append(time.monotonic())

    # However slow the calls themselves, six never fit in one second.
    assert stamps[5] - stamps[0] >= 0.95


@pytest.mark.parametrize("redis_url", [settings.REDIS_URL, ""])
def test_the_windows_keep_a_margin_for_calls_that_arrive_late(prefix, redis_url):
    """Klaviyo counts a call when it arrives, in windows aligned to its clock: a call let out at
    the very end of our window that arrives in Klaviyo's next one must not overfill that."""
    limiter = RateLimiter(limits={"c": (5, 100)}, redis_url=redis_url, key_prefix=prefix)

    stamps = []
    for _ in range(6):
        limiter.acquire("c")
        stamps.append(time.monotonic())

    assert stamps[5] - stamps[0] >= 1 + TRANSIT_MARGIN_SECONDS - 0.01


def test_the_steady_limit_counts_a_sliding_minute(prefix):
    class Asked(Exception):
        pass

    def sleep(seconds: float) -> None:
        raise Asked(seconds)  # report the wait instead of spending a minute on it

    limiter = RateLimiter(
        limits={"c": (100, 3)}, redis_url=settings.REDIS_URL, key_prefix=prefix, sleep=sleep
    )
    for _ in range(3):
        limiter.acquire("c")

    with pytest.raises(Asked) as asked:
        limiter.acquire("c")

    assert 55 < asked.value.args[0] <= 60 + TRANSIT_MARGIN_SECONDS


def test_several_processes_share_one_budget(prefix):
    """Two limiters (as in two workers) on one Redis key together stay under the limit."""
    limits = {"c": (10, 1000)}
    limiters = [
        RateLimiter(limits=limits, redis_url=settings.REDIS_URL, key_prefix=prefix)
        for _ in range(2)
    ]
    stamps: list[float] = []
    lock = threading.Lock()

    def work(limiter: RateLimiter) -> None:
        for _ in range(15):
            limiter.acquire("c")
            with lock:
                stamps.append(time.monotonic())

    threads = [threading.Thread(target=work, args=(limiter,)) for limiter in limiters]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    stamps.sort()
    worst_second = max(sum(1 for t in stamps if s <= t < s + 0.95) for s in stamps)
    assert len(stamps) == 30
    assert worst_second <= 10


def test_without_redis_the_limit_holds_in_process():
    limiter = RateLimiter(limits={"c": (3, 100)}, redis_url="")

    waits = [limiter.acquire("c") for _ in range(4)]

    assert waits[:3] == [0.0] * 3 and waits[3] > 0.5


def test_an_unreachable_redis_falls_back_to_the_process_and_logs(caplog):
    limiter = RateLimiter(limits={"c": (3, 100)}, redis_url="redis://127.0.0.1:1/0")

    waits = [limiter.acquire("c") for _ in range(4)]

    assert waits[3] > 0.5
    assert "Redis unreachable" in caplog.text
