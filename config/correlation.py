"""The correlation id of the work at hand (``X-Correlation-ID``, kept by django-guid).

A subscription stores the id of the storefront request that made it; the worker that pushes
it later sets that id again, so that one subscription can be followed in the logs from the
storefront to Klaviyo.
"""

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.http import HttpRequest, HttpResponse
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


# What a caller's X-Correlation-ID may be to be echoed and logged as given: Centra's clients
# send ids of their own making (not UUIDs), but a header value with a newline cannot be echoed
# and one with markup or escapes does not belong in log lines. Others are replaced by a new id.
SAFE_CORRELATION_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
CORRELATION_ID_META = "HTTP_X_CORRELATION_ID"


def correlation_id_sanitize_middleware(
    get_response: Callable[[HttpRequest], HttpResponse],
) -> Callable[[HttpRequest], HttpResponse]:
    """Drops an X-Correlation-ID that is not ``SAFE_CORRELATION_ID``; django-guid, next in the
    middleware, then makes a new one."""

    def middleware(request: HttpRequest) -> HttpResponse:
        given = request.META.get(CORRELATION_ID_META)
        if given is not None and not SAFE_CORRELATION_ID.fullmatch(given):
            del request.META[CORRELATION_ID_META]
        return get_response(request)

    return middleware
