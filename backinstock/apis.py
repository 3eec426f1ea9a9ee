"""The Checkout API and Shop API endpoints (CONTRACT §3, §4)."""

from dataclasses import dataclass
from typing import Any

from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from backinstock import selectors, services
from backinstock.models import Subscription
from backinstock.throttling import SubscribePerClientThrottle, SubscribePerEmailThrottle
from config.api.auth import HasShopApiKey
from config.api.errors import InvalidInput
from config.api.schema import ERROR_RESPONSES
from shop.models import location_code_canonical


@dataclass(frozen=True)
class ShipTo:
    country: str
    state: str | None


class ShipToSerializer(serializers.Serializer[Any]):
    """Only documents the shape; ``ShipToField`` parses it so errors use the contract's names."""

    country = serializers.CharField(help_text="ISO 3166-1 alpha-2 code of a ship-to country.")
    state = serializers.CharField(
        required=False, help_text="Required when the country has states, refused otherwise."
    )


MAX_LOCATION_CODE_LENGTH = 10


def _location_code(value: Any, name: str, errors: dict[str, str], *, required: bool) -> str | None:
    """A country or state code, trimmed and upper-cased; problems go into ``errors``."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            errors[name] = f"shipTo.{name} is required"
        return None
    if not isinstance(value, str):
        errors[name] = f"shipTo.{name} must be a string"
        return None
    code = location_code_canonical(value)
    if len(code) > MAX_LOCATION_CODE_LENGTH or not code.isprintable():
        errors[name] = f"shipTo.{name} is not a valid code"
        return None
    return code


@extend_schema_field(ShipToSerializer)
class ShipToField(serializers.Field[ShipTo, ShipTo, dict[str, Any], Any]):
    """``shipTo``: its errors are reported as ``shipTo.country`` and ``shipTo.state``."""

    def validate_empty_values(self, data: Any) -> tuple[bool, Any]:
        if data is serializers.empty or data is None:
            raise serializers.ValidationError({"country": "shipTo.country is required"})
        return False, data

    def to_internal_value(self, data: Any) -> ShipTo:
        if not isinstance(data, dict):
            raise serializers.ValidationError(
                {"country": 'shipTo must be an object such as {"country": "SE"}'}
            )
        errors: dict[str, str] = {}
        country = _location_code(data.get("country"), "country", errors, required=True)
        state = _location_code(data.get("state"), "state", errors, required=False)
        if errors or country is None:
            raise serializers.ValidationError(errors)
        return ShipTo(country=country, state=state)

    def to_representation(self, value: ShipTo) -> dict[str, Any]:
        return {"country": value.country, **({"state": value.state} if value.state else {})}


class SubscribeInputSerializer(serializers.Serializer[Any]):
    item = serializers.CharField(
        max_length=100, help_text='"<displayItemId>-<sizeId>", e.g. "12366-23400".'
    )
    shipTo = ShipToField()
    email = serializers.CharField(max_length=254, help_text="The shopper's email address.")
    language = serializers.CharField(
        required=False,
        allow_null=True,
        allow_blank=True,
        max_length=10,
        help_text="A configured language code; defaults to the country's, then the store's.",
    )


class SubscribeOutputSerializer(serializers.Serializer[Any]):
    subscribed = serializers.BooleanField()


def _validated(serializer_class: type[serializers.Serializer[Any]], data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise InvalidInput({"body": "The body must be a JSON object."})
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class _SubscribeApi(APIView):
    max_body_bytes = 8 * 1024

    def post(self, request: Request) -> Response:
        data = _validated(SubscribeInputSerializer, request.data)
        services.subscription_create(
            item=data["item"],
            country_code=data["shipTo"].country,
            state_code=data["shipTo"].state,
            email=data["email"],
            language_code=data.get("language") or None,
        )
        # The same answer for a new and a repeated subscription, so that the endpoint never
        # tells whether an address was already subscribed.
        return Response({"subscribed": True}, status=status.HTTP_201_CREATED)


_SUBSCRIBE_DOC = (
    "Store a back-in-stock subscription for one size, ship-to location and address. A repeat "
    "gets exactly the same answer. Klaviyo is never called in the request: the subscription is "
    "pushed by a worker."
)


@extend_schema_view(
    post=extend_schema(
        tags=["Checkout API"],
        operation_id="checkout_back_in_stock_subscribe",
        request=SubscribeInputSerializer,
        responses={201: SubscribeOutputSerializer, **ERROR_RESPONSES},
        description=_SUBSCRIBE_DOC + " Public; throttled per client and per address.",
        auth=[],
    )
)
class CheckoutSubscribeApi(_SubscribeApi):
    throttle_classes = [SubscribePerClientThrottle, SubscribePerEmailThrottle]


@extend_schema_view(
    post=extend_schema(
        tags=["Shop API"],
        operation_id="shop_back_in_stock_subscribe",
        request=SubscribeInputSerializer,
        responses={201: SubscribeOutputSerializer, **ERROR_RESPONSES},
        description=_SUBSCRIBE_DOC + " Server-side; throttled per address.",
    )
)
class ShopSubscribeApi(_SubscribeApi):
    permission_classes = [HasShopApiKey]
    throttle_classes = [SubscribePerEmailThrottle]


class SubscriptionOutputSerializer(serializers.Serializer[Any]):
    item = serializers.SerializerMethodField()
    product = serializers.CharField(source="variant.product.external_id")
    variant = serializers.CharField(source="variant.external_id")
    shipTo = serializers.SerializerMethodField()
    email = serializers.CharField()
    language = serializers.CharField(source="language.code")
    createdAt = serializers.DateTimeField(source="created_at")
    status = serializers.ChoiceField(choices=["pending", "subscribed", "failed"])

    def get_item(self, subscription: Subscription) -> str:
        return f"{subscription.variant.product.display_item_id}-{subscription.variant.size_id}"

    @extend_schema_field(ShipToSerializer)
    def get_shipTo(self, subscription: Subscription) -> dict[str, str]:  # noqa: N802
        product = subscription.variant.product
        ship_to = {"country": product.country.code}
        if product.state is not None:
            ship_to["state"] = product.state.code
        return ship_to


class SubscriptionListOutputSerializer(serializers.Serializer[Any]):
    subscriptions = SubscriptionOutputSerializer(many=True)


class EraseOutputSerializer(serializers.Serializer[Any]):
    deleted = serializers.IntegerField()


class EmailQuerySerializer(serializers.Serializer[Any]):
    email = serializers.CharField(max_length=254)


_EMAIL_PARAMETER = OpenApiParameter(
    "email", str, required=True, description="The address, matched case-insensitively."
)


class ShopSubscriptionsApi(APIView):
    permission_classes = [HasShopApiKey]

    @extend_schema(
        tags=["Shop API"],
        operation_id="shop_back_in_stock_subscriptions_list",
        parameters=[_EMAIL_PARAMETER],
        responses={200: SubscriptionListOutputSerializer, **ERROR_RESPONSES},
        description="Every back-in-stock subscription of one address.",
    )
    def get(self, request: Request) -> Response:
        email = _validated(EmailQuerySerializer, request.query_params.dict())["email"]
        subscriptions = selectors.subscription_list_for_email(email=email)
        data = SubscriptionOutputSerializer(subscriptions, many=True).data
        return Response({"subscriptions": data})

    @extend_schema(
        tags=["Shop API"],
        operation_id="shop_back_in_stock_subscriptions_erase",
        parameters=[_EMAIL_PARAMETER],
        responses={200: EraseOutputSerializer, **ERROR_RESPONSES},
        description="Erase every back-in-stock subscription of one address.",
    )
    def delete(self, request: Request) -> Response:
        email = _validated(EmailQuerySerializer, request.query_params.dict())["email"]
        erased = services.subscriptions_erase(email=email, source="shop-api")
        return Response({"deleted": erased.deleted})
