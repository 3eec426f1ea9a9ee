"""The correlation id of the work at hand (``X-Correlation-ID``, kept by django-guid).

A subscription stores the id of the storefront request that made it; the worker that pushes
it later sets that id again, so that one subscription can be followed in the logs from the
storefront to Klaviyo.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from django_guid import get_guid, set_guid

MAX_LENGTH = 64


def correlation_id_current() -> str:
    """The id of the request or task running now; "" outside one. At most 64 characters."""
    return (get_guid() or "")[:MAX_LENGTH]


@contextmanager
def correlation_id_set(correlation_id: str) -> Iterator[None]:
    """Run the block under ``correlation_id`` (when not empty), then restore the previous id."""
    previous = get_guid()
    if correlation_id:
        set_guid(correlation_id)
    try:
        yield
    finally:
        set_guid(previous)
