"""The Integration API: absolute stock levels from an ERP or WMS (CONTRACT §5)."""

from typing import Any

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api.auth import HasIntegrationApiToken
from config.api.errors import InvalidInput
from config.api.exceptions import flatten_errors
from config.api.fields import StrictIntegerField, text_storable
from config.api.schema import INTEGRATION_API_SECURITY, body_errors, error_response, key_errors
from shop.models import COUNT_MAX
from shop.services import StockEntry, stock_entries_apply

MAX_STOCK_ENTRIES = 10_000


class StockEntrySerializer(serializers.Serializer[Any]):
    sku = serializers.CharField(help_text="The size's SKU.")
    warehouse = serializers.CharField(help_text="The warehouse's name.")
    # The range is checked by the service, together with the catalog, so that one answer
    # names every problem; here only the type.
    physical = StrictIntegerField(help_text=f"0 to {COUNT_MAX}.")
    allocated = StrictIntegerField(required=False, default=0, help_text=f"0 to {COUNT_MAX}.")


class StockInputSerializer(serializers.Serializer[Any]):
    """Documents the body; ``_entries_read`` reads it entry by entry."""

    # many=True builds a ListSerializer, which takes max_length; the stubs do not know it.
    stock = StockEntrySerializer(  # type: ignore[call-arg]
        many=True, max_length=MAX_STOCK_ENTRIES, allow_empty=False
    )


class StockOutputSerializer(serializers.Serializer[Any]):
    updated = serializers.IntegerField(help_text="How many entries were applied.")


MAX_BODY_BYTES = 4 * 1024 * 1024


def _entries_read(data: Any) -> tuple[list[StockEntry], dict[str, str]]:
    """The body's entries and the problems of their structure, every entry read.

    An entry that cannot be read whole stands in the list with what could be read (its SKU and
    warehouse if they are strings), so that the catalog's problems with it are reported in the
    same answer as its structural ones.
    """
    if not isinstance(data, dict):
        raise InvalidInput({"body": "The body must be a JSON object."})
    raw_entries = data.get("stock")
    if not isinstance(raw_entries, list) or not raw_entries:
        raise InvalidInput({"stock": "must be a non-empty list of stock entries"})
    if len(raw_entries) > MAX_STOCK_ENTRIES:
        raise InvalidInput({"stock": f"must have at most {MAX_STOCK_ENTRIES} entries"})
    reader = StockEntrySerializer()
    entries: list[StockEntry] = []
    problems: dict[str, str] = {}
    for index, raw in enumerate(raw_entries):
        try:
            entries.append(StockEntry(**reader.run_validation(raw)))
        except serializers.ValidationError as exc:
            problems.update(flatten_errors(exc.detail, f"stock[{index}]"))
            names = raw if isinstance(raw, dict) else {}
            entries.append(
                StockEntry(
                    sku=_text_or_empty(names.get("sku")),
                    warehouse=_text_or_empty(names.get("warehouse")),
                    physical=0,
                    allocated=0,
                )
            )
    return entries, problems


def _text_or_empty(value: object) -> str:
    """A name to look up in the catalog, or "" (none) when it is not text the database takes."""
    return value if isinstance(value, str) and text_storable(value) else ""


class StockUpdateApi(APIView):
    permission_classes = [HasIntegrationApiToken]
    max_body_bytes = MAX_BODY_BYTES

    @extend_schema(
        tags=["Integration API"],
        operation_id="integration_stock_update",
        request=StockInputSerializer,
        examples=[
            OpenApiExample(
                "Size M in Stockholm",
                value={
                    "stock": [
                        {
                            "sku": "HD-1-BLK-M",
                            "warehouse": "Stockholm",
                            "physical": 12,
                            "allocated": 2,
                        }
                    ]
                },
                request_only=True,
            )
        ],
        responses={
            200: OpenApiResponse(StockOutputSerializer, description="Every entry applied."),
            400: error_response(
                "Invalid entries (nothing was changed), or the body is not valid JSON.",
                unknown_sku={"stock[3].sku": "unknown SKU HD-1-BLK-XXL"},
                unknown_warehouse={"stock[0].warehouse": "unknown warehouse Oslo"},
                negative={"stock[1].physical": "must be zero or more"},
            ),
            **key_errors(realm="Integration API"),
            **body_errors(max_bytes=MAX_BODY_BYTES),
        },
        auth=INTEGRATION_API_SECURITY,
        description=(
            f"Absolute stock per (size SKU, warehouse), up to {MAX_STOCK_ENTRIES:,} entries. "
            "All or nothing: one invalid entry and nothing changes; every problem is reported "
            "in one answer with its path, e.g. `stock[3].sku`."
        ),
    )
    def post(self, request: Request) -> Response:
        entries, problems = _entries_read(request.data)
        written = stock_entries_apply(entries=entries, path="stock", problems=problems)
        return Response({"updated": written})
