"""Request metrics, and health probes answered whatever the Host header."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponseBase
from django.urls import Resolver404, resolve

from operations import apis
from operations.metrics import metric_observe

# Requests that matched no URL pattern share one label, so a scanner cannot add series.
UNMATCHED_ROUTE = "unmatched"
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def request_metrics_middleware(
    get_response: Callable[[HttpRequest], HttpResponseBase],
) -> Callable[[HttpRequest], HttpResponseBase]:
    """First in ``MIDDLEWARE``: times the whole request by method, route and status."""

    def middleware(request: HttpRequest) -> HttpResponseBase:
        started = time.perf_counter()
        response = get_response(request)
        metric_observe(
            "http_request_duration_seconds",
            time.perf_counter() - started,
            method=request.method if request.method in KNOWN_METHODS else "other",
            route=_route(request, status=response.status_code),
            status=response.status_code,
        )
        return response

    return middleware


def _route(request: HttpRequest, *, status: int) -> str:
    """The URL pattern the request matched; ``UNMATCHED_ROUTE`` where none does.

    A request answered before Django resolved its URL (a CORS preflight, answered by
    django-cors-headers) is resolved here, so that it counts under the route it asked about. A
    404 without a match is one Django failed to resolve already: not resolved a second time.
    """
    match = getattr(request, "resolver_match", None)
    if match is None:
        if status == 404:
            return UNMATCHED_ROUTE
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return UNMATCHED_ROUTE
    return str(match.route or match.view_name)


# Load balancers and container runtimes probe by address (Host: 10.0.3.7), which
# DJANGO_ALLOWED_HOSTS rightly refuses for everything else.
PROBES = {"/healthz": apis.healthz, "/readyz": apis.readyz}


def probe_middleware(
    get_response: Callable[[HttpRequest], HttpResponseBase],
) -> Callable[[HttpRequest], HttpResponseBase]:
    """Right after the metrics: answers ``/healthz`` and ``/readyz`` before the Host header is
    checked (CommonMiddleware) or HTTPS is enforced, so a probe gets its answer, not a 400 or a
    redirect. They disclose nothing but the checks' status."""

    def middleware(request: HttpRequest) -> HttpResponseBase:
        view = PROBES.get(request.path_info)
        if view is None:
            return get_response(request)
        request.resolver_match = resolve(request.path_info)  # the route label of the metrics
        return view(request)

    return middleware
