"""Liveness, readiness and metrics (CONTRACT §9).

Thin Django views rather than DRF: probes come every few seconds and need none of DRF's
parsing, throttling or content negotiation. Their JSON is the contract's, which is why they are
not django-health-check's views (its JSON is keyed by check class names, without the overall
``status``).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from prometheus_client import CONTENT_TYPE_LATEST

from operations.selectors import metrics_exposition, readiness_checks, readiness_ok

View = Callable[[HttpRequest], HttpResponse]


def get_only(view: View) -> View:
    """GET and HEAD only; any other method gets 405 in the contract's error shape."""

    @wraps(view)
    def wrapper(request: HttpRequest) -> HttpResponse:
        if request.method not in ("GET", "HEAD"):
            response = JsonResponse(
                {"errors": {"method": f"Method {request.method} is not allowed; use GET."}},
                status=405,
            )
            response["Allow"] = "GET, HEAD"
            return response
        return view(request)

    return wrapper


@never_cache
@get_only
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: ``200 {"status": "ok"}`` while the process serves; touches nothing else."""
    return JsonResponse({"status": "ok"})


@never_cache
@get_only
def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: ``200`` or ``503`` with ``{"status": "ok"|"failing", "checks": {...}}``."""
    checks = readiness_checks()
    ready = readiness_ok(checks)
    return JsonResponse(
        {"status": "ok" if ready else "failing", "checks": checks}, status=200 if ready else 503
    )


@never_cache
@get_only
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text, for ``Authorization: Bearer <METRICS_TOKEN>``.

    ``METRICS_TOKEN`` empty: 403, the endpoint is closed. A missing or wrong token: 401. Errors
    in the contract's shape ``{"errors": {"authorization": ...}}``.
    """
    token = settings.METRICS_TOKEN
    if not token:
        return JsonResponse(
            {"errors": {"authorization": "Metrics are off: METRICS_TOKEN is not set."}},
            status=403,
        )
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), token.encode()
    ):
        response = JsonResponse(
            {"errors": {"authorization": "A valid bearer token is required."}}, status=401
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(metrics_exposition(), content_type=CONTENT_TYPE_LATEST)
