"""The OpenAPI schema and its pages: the storefront developers' reference.

The pieces every endpoint's documentation is built from (the one error shape, the errors of a
JSON body and of a shared secret, throttling), and the schema, Swagger UI and ReDoc views, which
load nothing from another host (drf-spectacular-sidecar) and answer errors as JSON.
"""

from typing import Any

from drf_spectacular.renderers import (
    OpenApiJsonRenderer,
    OpenApiJsonRenderer2,
    OpenApiYamlRenderer,
    OpenApiYamlRenderer2,
)
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    inline_serializer,
)
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api.middleware import LENGTH_REQUIRED_MESSAGE

ErrorSerializer = inline_serializer(
    name="Errors",
    fields={
        "errors": serializers.DictField(
            child=serializers.CharField(),
            help_text='One message per bad field, e.g. {"shipTo.country": "..."}.',
        )
    },
)


def error_response(description: str, **examples: dict[str, str]) -> OpenApiResponse:
    """One documented error status: ``description`` and one example per keyword, each the
    ``errors`` object an operation really answers (keyword → example name)."""
    return OpenApiResponse(
        response=ErrorSerializer,
        description=description,
        examples=[
            OpenApiExample(name, value={"errors": errors}, response_only=True)
            for name, errors in examples.items()
        ],
    )


def body_errors(*, max_bytes: int) -> dict[int, OpenApiResponse]:
    """The errors of an endpoint that reads a JSON body of at most ``max_bytes``."""
    return {
        411: error_response(
            "The body was sent without a Content-Length (`Transfer-Encoding: chunked`).",
            length_required={"body": LENGTH_REQUIRED_MESSAGE},
        ),
        413: error_response(
            f"The body is larger than {max_bytes:,} bytes.",
            too_large={"body": f"Request body is larger than {max_bytes} bytes."},
        ),
        415: error_response(
            "The body is not `application/json`.",
            not_json={"body": 'Unsupported media type "text/plain" in request.'},
        ),
    }


def key_errors(
    *, realm: str, also: str = "", **examples: dict[str, str]
) -> dict[int, OpenApiResponse]:
    """The 403 of an API behind a shared secret (``config.api.auth``); ``also`` and
    ``examples`` add the operation's other 403s."""
    return {
        403: error_response(
            f"The credentials are missing or wrong, or the {realm} is closed on this server "
            f"(no key configured){also}.",
            missing_key={"authorization": f"Missing credentials for the {realm}."},
            wrong_key={"authorization": "Invalid credentials."},
            **examples,
        )
    }


def throttled_response(*, per: str) -> OpenApiResponse:
    """The 429 of a throttled endpoint; ``per`` says what is counted ("for this address")."""
    return error_response(
        f"Too many requests {per}; retry after `Retry-After` seconds.",
        throttled={"throttle": "Request was throttled. Expected available in 3599 seconds."},
    )


RETRY_AFTER = OpenApiParameter(
    "Retry-After",
    int,
    OpenApiParameter.HEADER,
    response=[429],
    description="Seconds until the throttle's window ends and the request may be sent again.",
)

# What Swagger UI's Authorize button fills in, by the scheme names of SPECTACULAR_SETTINGS.
SHOP_API_SECURITY: Any = [{"API-Authorization": []}]
INTEGRATION_API_SECURITY: Any = [{"IntegrationBearer": []}]


class _OpenApiYamlTextRenderer(OpenApiYamlRenderer):
    """YAML as ``text/plain``: a browser shows it instead of downloading a file."""

    media_type = "text/plain"
    charset = "utf-8"


class _JsonErrorsMixin(APIView):
    """Errors (405 for a wrong method) in the contract's JSON shape, whatever the page renders."""

    def handle_exception(self, exc: Exception) -> Response:
        response = super().handle_exception(exc)
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = JSONRenderer.media_type
        return response


class SchemaApi(_JsonErrorsMixin, SpectacularAPIView):
    """``/api/schema``: YAML a browser shows; JSON on ``?format=json`` or ``Accept:
    application/json``; the OpenAPI media types (``application/vnd.oai.openapi[+json]``,
    ``application/yaml``) for the tools that ask for them.

    DRF picks the first renderer for a browser's ``*/*`` and the first whose format is the
    ``format`` parameter, hence the order.
    """

    renderer_classes = [
        _OpenApiYamlTextRenderer,
        OpenApiYamlRenderer,
        OpenApiYamlRenderer2,
        OpenApiJsonRenderer2,
        OpenApiJsonRenderer,
    ]


class SwaggerUiPage(_JsonErrorsMixin, SpectacularSwaggerView):
    """``/api/docs``: Swagger UI from the project's static files, with an Authorize button."""


class RedocPage(_JsonErrorsMixin, SpectacularRedocView):
    """``/api/redoc``: ReDoc from the project's static files, without web fonts from elsewhere."""

    template_name = "redoc.html"
