"""Renders every API error in the contract's one shape: ``{"errors": {"<field>": "<message>"}}``."""

from typing import Any

from django.http import Http404
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
