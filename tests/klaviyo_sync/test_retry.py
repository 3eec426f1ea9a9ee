import pytest

from klaviyo_sync.retry import backoff_seconds, task_countdown


@pytest.mark.parametrize(
    ("seconds", "countdown"), [(0.0, 1.0), (0.01, 1.0), (0.99, 1.0), (2.5, 2.5)]
)
def test_a_task_countdown_is_never_under_one_second(seconds, countdown):
    assert task_countdown(seconds) == countdown


def test_every_first_retry_delay_becomes_a_countdown_rabbitmq_accepts():
    delays = [task_countdown(backoff_seconds(1)) for _ in range(200)]
    assert min(delays) >= 1.0
