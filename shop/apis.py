"""The Integration API: absolute stock levels from an ERP or WMS (CONTRACT §5)."""

from typing import Any

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api.auth import HasIntegrationApiToken
from config.api.errors import InvalidInput
from config.api.schema import INTEGRATION_API_SECURITY, body_errors, error_response, key_errors
from shop.services import StockEntry, stock_entries_apply

MAX_STOCK_ENTRIES = 10_000


class StockEntrySerializer(serializers.Serializer[Any]):
    sku = serializers.CharField(help_text="The size's SKU.")
    warehouse = serializers.CharField(help_text="The warehouse's name.")
    physical = serializers.IntegerField(min_value=0)
    allocated = serializers.IntegerField(min_value=0, required=False, default=0)


class StockInputSerializer(serializers.Serializer[Any]):
    # many=True builds a ListSerializer, which takes max_length; the stubs do not know it.
    stock = StockEntrySerializer(  # type: ignore[call-arg]
        many=True, max_length=MAX_STOCK_ENTRIES, allow_empty=False
    )


class StockOutputSerializer(serializers.Serializer[Any]):
    updated = serializers.IntegerField(help_text="How many entries were applied.")


MAX_BODY_BYTES = 4 * 1024 * 1024


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
                negative={"stock[1].physical": "Ensure this value is greater than or equal to 0."},
            ),
            **key_errors(realm="Integration API"),
            **body_errors(max_bytes=MAX_BODY_BYTES),
        },
        auth=INTEGRATION_API_SECURITY,
        description=(
            f"Absolute stock per (size SKU, warehouse), up to {MAX_STOCK_ENTRIES:,} entries. "
            "All or nothing: one invalid entry and nothing changes; every problem is reported "
            "with its path, e.g. `stock[3].sku`."
        ),
    )
    def post(self, request: Request) -> Response:
        if not isinstance(request.data, dict):
            raise InvalidInput({"body": "The body must be a JSON object."})
        serializer = StockInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        entries = [StockEntry(**entry) for entry in serializer.validated_data["stock"]]
        written = stock_entries_apply(entries=entries, path="stock")
        return Response({"updated": written})
