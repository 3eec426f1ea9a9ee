import time


def assert_waits_to_the_end_of_its_window(retry_after: str, *, period: int) -> None:
    """``Retry-After`` runs to the end of the fixed window of ``period`` seconds it was counted in.

    Windows are aligned to the epoch, so at 10:59:30 an hour's window has 30 s left: asserting
    "more than a minute" of an hourly throttle failed in the last minute of every hour. Compared
    on the window's circle, so that a window ending between the answer and this check still fits.
    """
    assert 1 <= int(retry_after) <= period, (retry_after, period)
    left = period - time.time() % period
    apart = (int(retry_after) - left) % period
    assert min(apart, period - apart) <= 2, (retry_after, left)
