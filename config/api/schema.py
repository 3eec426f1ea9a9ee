"""OpenAPI pieces shared by every endpoint: the one error shape."""

from typing import Any

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, inline_serializer
from rest_framework import serializers

ErrorSerializer = inline_serializer(
    name="Errors",
    fields={
        "errors": serializers.DictField(
            child=serializers.CharField(),
            help_text='One message per bad field, e.g. {"shipTo.country": "..."}.',
        )
    },
)


def _error(description: str, example: dict[str, str]) -> OpenApiResponse:
    return OpenApiResponse(
        response=ErrorSerializer,
        description=description,
        examples=[OpenApiExample(description, value={"errors": example})],
    )


ERROR_RESPONSES: dict[int, Any] = {
    400: _error("Invalid input or malformed JSON", {"item": "item 12366-99 not found"}),
    403: _error(
        "Missing or wrong credentials, or back in stock not enabled",
        {"backInStock": "Back-in-stock subscriptions are not enabled for this store."},
    ),
    413: _error("Body too large", {"body": "Request body is larger than 8192 bytes."}),
    415: _error("Not JSON", {"body": 'Unsupported media type "text/plain" in request.'}),
    429: _error("Too many requests; see Retry-After", {"throttle": "Request was throttled."}),
}
