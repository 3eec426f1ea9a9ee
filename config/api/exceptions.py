"""Renders every API error in the contract's one shape: ``{"errors": {"<field>": "<message>"}}``."""

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler, set_rollback

from config.api.errors import ApplicationError
from config.api.parsers import RequestTooLarge

# Field-less errors are keyed by what they are about.
_GENERAL_KEYS: dict[type[exceptions.APIException], str] = {
    exceptions.ParseError: "body",
    RequestTooLarge: "body",
    exceptions.UnsupportedMediaType: "body",
    exceptions.NotAuthenticated: "authorization",
    exceptions.AuthenticationFailed: "authorization",
    exceptions.PermissionDenied: "authorization",
    exceptions.Throttled: "throttle",
    exceptions.MethodNotAllowed: "method",
    exceptions.NotAcceptable: "accept",
    exceptions.NotFound: "path",
}


def flatten_errors(detail: Any, prefix: str = "") -> dict[str, str]:
    """DRF's nested error detail as ``{"shipTo.country": "first message", ...}``."""
    if isinstance(detail, dict):
        flat: dict[str, str] = {}
        for key, value in detail.items():
            if key == "non_field_errors":  # about the object itself: keyed by its own path
                path = prefix or "body"
            else:
                path = f"{prefix}.{key}" if prefix else str(key)
            flat.update(flatten_errors(value, path))
        return flat
    if isinstance(detail, list):
        if detail and all(not isinstance(item, (dict, list)) for item in detail):
            return {prefix or "body": str(detail[0])}
        flat = {}
        for index, item in enumerate(detail):
            if item:
                flat.update(flatten_errors(item, f"{prefix}[{index}]"))
        return flat
    return {prefix or "body": str(detail)}


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ApplicationError):
        set_rollback()
        return Response({"errors": exc.errors}, status=exc.status_code)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    response = exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response
    if isinstance(exc, exceptions.ValidationError):
        errors = flatten_errors(exc.detail)
    else:
        key = next((k for cls, k in _GENERAL_KEYS.items() if isinstance(exc, cls)), "detail")
        errors = {key: str(exc.detail)}
    response.data = {"errors": errors}
    if response.status_code == status.HTTP_429_TOO_MANY_REQUESTS and "Retry-After" not in response:
        response["Retry-After"] = "1"
    return response


# --- Answers Django gives outside DRF's views -------------------------------------------------
# Storefront clients parse every answer under /api/ as JSON (CONTRACT §3), so the paths no view
# serves, and the errors Django answers by itself, keep the one shape there too.

API_PATH_PREFIX = "/api/"


def _is_api_path(request: HttpRequest) -> bool:
    return request.path.startswith(API_PATH_PREFIX)


def api_error_response(*, key: str, message: str, status_code: int) -> JsonResponse:
    """``{"errors": {key: message}}`` with ``status_code``, outside DRF's views."""
    return JsonResponse({"errors": {key: message}}, status=status_code)


@csrf_exempt
def api_path_not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """Every method on a path under /api/ that no endpoint serves: 404 in the error shape."""
    return api_error_response(
        key="path", message=f"No endpoint at {request.path}.", status_code=404
    )


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's own 400 (e.g. a Host not in ``ALLOWED_HOSTS``): JSON under /api/."""
    if _is_api_path(request):
        return api_error_response(key="request", message="Bad request.", status_code=400)
    return defaults.bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's own 403 (e.g. CSRF): JSON under /api/."""
    if _is_api_path(request):
        return api_error_response(
            key="authorization", message="Permission denied.", status_code=403
        )
    return defaults.permission_denied(request, exception)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's own 404: JSON under /api/ (the catch-all route answers first, even in DEBUG)."""
    if _is_api_path(request):
        return api_path_not_found(request)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """An unhandled error: JSON under /api/, without any detail of the error."""
    if _is_api_path(request):
        return api_error_response(key="server", message="Internal server error.", status_code=500)
    return defaults.server_error(request)
