"""Liveness, readiness (CONTRACT §9).

Thin Django views rather than DRF: probes come every few seconds and need none of DRF's
parsing, throttling or content negotiation. Their JSON is the contract's, which is why they are
not django-health-check's views (its JSON is keyed by check class names, without the overall
``status``).
"""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from operations.selectors import readiness_checks, readiness_ok


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: ``200 {"status": "ok"}`` while the process serves; touches nothing else."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: ``200`` or ``503`` with ``{"status": "ok"|"failing", "checks": {...}}``."""
    checks = readiness_checks()
    ready = readiness_ok(checks)
    return JsonResponse(
        {"status": "ok" if ready else "failing", "checks": checks}, status=200 if ready else 503
    )
