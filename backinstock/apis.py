"""The Checkout API and Shop API endpoints (CONTRACT §3, §4)."""

import re
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, cast

from django.http import HttpRequest, HttpResponse, HttpResponseBase
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import serializers, status
from rest_framework.exceptions import ParseError
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from backinstock import selectors, services
from backinstock.models import Subscription
from backinstock.throttling import ClientThrottle, client_throttled
from config.api.auth import HasShopApiKey
from config.api.errors import InvalidInput
from config.api.fields import ascii_decimal
from config.api.parsers import LimitedJSONParser, json_document
from config.api.schema import (
    RETRY_AFTER,
    SHOP_API_SECURITY,
    body_errors,
    error_response,
    key_errors,
    throttled_response,
)
from shop.models import location_code_canonical


@dataclass(frozen=True)
class ShipTo:
    country: str
    state: str | None


# Documents ``shipTo``; ``ShipToField`` below parses it, so that its errors are reported as
# ``shipTo.country`` and ``shipTo.state``.
class ShipToSerializer(serializers.Serializer[Any]):
    """Where the parcel would go: the ship-to country and, where it has states, the state.
    Codes match whatever their case."""

    country = serializers.CharField(
        help_text='ISO 3166-1 alpha-2 code of a ship-to country, e.g. "SE".'
    )
    state = serializers.CharField(
        required=False,
        allow_blank=True,
        allow_null=True,
        help_text=(
            'Required when the country has states (e.g. "NY" in "US"), refused otherwise; '
            "empty or null is the same as absent."
        ),
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


ITEM_MAX_LENGTH, EMAIL_MAX_LENGTH, LANGUAGE_MAX_LENGTH = 100, 254, 10


class SubscribeInputSerializer(serializers.Serializer[Any]):
    item = serializers.CharField(
        max_length=ITEM_MAX_LENGTH, help_text='"<displayItemId>-<sizeId>", e.g. "12366-23400".'
    )
    shipTo = ShipToField()
    email = serializers.CharField(
        max_length=EMAIL_MAX_LENGTH, help_text="The shopper's email address."
    )
    language = serializers.CharField(
        required=False,
        allow_null=True,
        allow_blank=True,
        max_length=LANGUAGE_MAX_LENGTH,
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


# What DRF's CharField refuses in text (ProhibitNullCharactersValidator and
# ProhibitSurrogateCharactersValidator).
_NUL_OR_SURROGATE = re.compile("[\x00\ud800-\udfff]")


def _plain_text(value: Any, *, max_length: int, allow_empty: bool) -> str | None:
    """A ``CharField``'s value (trimmed) when DRF would take it as it is; None otherwise.

    None also for anything DRF converts or refuses (a number, null, blank, too long, a NUL or a
    lone surrogate), which ``SubscribeInputSerializer`` then reports in DRF's own words.
    """
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text:
        return "" if allow_empty else None
    if len(text) > max_length or _NUL_OR_SURROGATE.search(text):
        return None
    return text


def _subscribe_input_plain(body: Any) -> dict[str, Any] | None:
    """``SubscribeInputSerializer``'s validated data, without DRF, for a body of plain strings.

    The usual request is four short strings; running the serializer for them cost a tenth of
    the endpoint's time (bench/README.md, "Load"). Answers None for anything else (a field
    missing, null, blank where it must not be, of another type, too long, with a bad code), and
    the caller runs the serializer, whose errors are the contract's. What this takes it takes as
    the serializer would: the same trimmed values (a property test holds the two together).
    """
    if not isinstance(body, dict):
        return None
    ship_to = body.get("shipTo")
    if not isinstance(ship_to, dict):
        return None
    item = _plain_text(body.get("item"), max_length=ITEM_MAX_LENGTH, allow_empty=False)
    email = _plain_text(body.get("email"), max_length=EMAIL_MAX_LENGTH, allow_empty=False)
    if item is None or email is None:
        return None
    data: dict[str, Any] = {"item": item, "email": email}
    if body.get("language") is not None:
        data["language"] = _plain_text(
            body["language"], max_length=LANGUAGE_MAX_LENGTH, allow_empty=True
        )
        if data["language"] is None:
            return None
    elif "language" in body:
        data["language"] = None
    errors: dict[str, str] = {}
    country = _location_code(ship_to.get("country"), "country", errors, required=True)
    state = _location_code(ship_to.get("state"), "state", errors, required=False)
    if errors or country is None:
        return None
    data["shipTo"] = ShipTo(country=country, state=state)
    return data


def subscription_create_from_body(body: Any, *, client_throttle: ClientThrottle | None) -> None:
    """Parse a subscribe request's body (CONTRACT §3) and store the subscription.

    The one path of the Checkout API, the Shop API and the Storefront API (GraphQL), so they
    apply the same rules with the same messages. ``client_throttle``: the entry point's
    per-client throttle (``client_throttled``), None where there is none. Raises DRF's
    ``ValidationError`` (fields as ``item``, ``shipTo.country``...), the project's
    ``ApplicationError`` or ``SubscribeThrottled``.
    """
    data = _subscribe_input_plain(body)
    if data is None:
        data = _validated(SubscribeInputSerializer, body)
    _subscription_create_from_input(data, client_throttle=client_throttle)


def _subscription_create_from_input(
    data: dict[str, Any], *, client_throttle: ClientThrottle | None
) -> None:
    """Store the subscription of ``SubscribeInputSerializer``'s validated ``data``."""
    services.subscription_create(
        item=data["item"],
        country_code=data["shipTo"].country,
        state_code=data["shipTo"].state,
        email=data["email"],
        language_code=data.get("language") or None,
        client_throttle=client_throttle,
    )


SUBSCRIBE_MAX_BODY_BYTES = 8 * 1024


# What DRF's content negotiation answers with JSON when the view has JSON as its one renderer.
_PLAIN_ACCEPT = frozenset({None, "*/*", "application/json"})


def _plain_lane_input(request: HttpRequest, *, body_limit: int) -> dict[str, Any] | None:
    """The validated input of a usual subscribe request, read without DRF; None for any other.

    Usual: a POST with no query string (DRF reads ``?format=``), ``Content-Type:
    application/json`` exactly, an ``Accept`` that DRF's negotiation answers with JSON, a
    ``Content-Length`` within ``body_limit`` (bytes), and a body that is a JSON object of plain
    strings (``_subscribe_input_plain``). Anything else is None and goes through DRF, whose
    parser, negotiation and serializer give the contract's errors; reading the body here leaves
    it readable there (Django keeps it).
    """
    meta = request.META
    if (
        request.method != "POST"
        or meta.get("QUERY_STRING")
        or meta.get("CONTENT_TYPE") != "application/json"
        or meta.get("HTTP_ACCEPT") not in _PLAIN_ACCEPT
    ):
        return None
    length = ascii_decimal(meta.get("CONTENT_LENGTH") or "")
    if length is None or length > body_limit:
        return None
    try:
        document = json_document(request.body)
    except ParseError:
        return None
    return _subscribe_input_plain(document)


_SUBSCRIBED_ANSWER = {"subscribed": True}
_SUBSCRIBED_JSON = JSONRenderer().render(_SUBSCRIBED_ANSWER)


class _SubscribeApi(APIView):
    max_body_bytes = SUBSCRIBE_MAX_BODY_BYTES

    throttle_classes: list[Any] = []  # per client in ``post`` where wanted; per address always
    throttled_per_client = False
    # Answer the usual request without DRF's request, negotiation, parser and renderer (a tenth
    # of the endpoint's time, bench/README.md "Load"). Only where DRF checks nothing before the
    # view (no authentication, no permission): the Shop API's key check stays DRF's.
    plain_lane = False

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        """DRF's dispatch, except for the usual request (``_plain_lane_input``) when
        ``plain_lane``: that one is stored and answered here. The answers are DRF's, byte for
        byte (a property test compares the two lanes): a success is the same 201 with the same
        headers, and an error raised by the service goes through DRF's exception handling."""
        data = (
            _plain_lane_input(request, body_limit=LimitedJSONParser.body_limit(self))
            if self.plain_lane
            else None
        )
        if data is None:
            return super().dispatch(request, *args, **kwargs)
        try:
            with self._client_throttled(request) as throttle:
                _subscription_create_from_input(data, client_throttle=throttle)
        except Exception as exc:
            return self._exception_answer(request, exc, *args, **kwargs)
        response = HttpResponse(
            _SUBSCRIBED_JSON, status=status.HTTP_201_CREATED, content_type="application/json"
        )
        for name, value in self.default_response_headers.items():
            response[name] = value
        return response

    def _exception_answer(
        self, django_request: HttpRequest, exc: Exception, *args: Any, **kwargs: Any
    ) -> HttpResponseBase:
        """The answer DRF's dispatch gives when ``post`` raises ``exc``."""
        self.args, self.kwargs = args, kwargs
        request = self.initialize_request(django_request, *args, **kwargs)
        self.request = request
        self.headers = self.default_response_headers
        try:
            self.initial(request, *args, **kwargs)
        except Exception as refused:  # what DRF checks before the view, were it to refuse
            exc = refused
        response = self.handle_exception(exc)
        self.response = self.finalize_response(request, response, *args, **kwargs)
        return self.response

    def _client_throttled(
        self, request: HttpRequest | Request
    ) -> AbstractContextManager[ClientThrottle | None]:
        """``client_throttled`` for the request's client where ``throttled_per_client``."""
        if not self.throttled_per_client:
            return nullcontext()
        # DRF's client address (X-Forwarded-For past NUM_PROXIES): it reads ``META`` alone,
        # which a Django request has as well.
        client = BaseThrottle().get_ident(cast(Request, request))
        return client_throttled(client=client)

    def post(self, request: Request) -> Response:
        with self._client_throttled(request) as throttle:
            subscription_create_from_body(request.data, client_throttle=throttle)
        # The same answer for a new and a repeated subscription, so that the endpoint never
        # tells whether an address was already subscribed.
        return Response(_SUBSCRIBED_ANSWER, status=status.HTTP_201_CREATED)


_SUBSCRIBE_DOC = (
    "Store a back-in-stock subscription for one size, ship-to location and address. A repeat "
    "gets exactly the same answer. Klaviyo is never called in the request: the subscription is "
    "pushed by a worker."
)
_SUBSCRIBE_EXAMPLES = [
    OpenApiExample(
        "Sweden",
        value={
            "item": "12366-23400",
            "shipTo": {"country": "SE"},
            "email": "ann@example.com",
            "language": "sv",
        },
        request_only=True,
    ),
    OpenApiExample(
        "New York",
        value={
            "item": "12366-23400",
            "shipTo": {"country": "US", "state": "NY"},
            "email": "ann@example.com",
        },
        request_only=True,
    ),
]
_SUBSCRIBE_INVALID = error_response(
    "Invalid input: one message per bad field, or the body is not valid JSON.",
    unknown_item={"item": "item 12366-99 not found"},
    not_a_ship_to_country={"shipTo.country": "country XX is not a ship-to country"},
    state_required={"shipTo.state": "state is required for country US"},
    unknown_language={"language": "language not found"},
    malformed_json={"body": "Malformed JSON: Expecting value: line 1 column 1 (char 0)"},
)
_BACK_IN_STOCK_OFF = {"backInStock": "Back-in-stock subscriptions are not enabled for this store."}
_SUBSCRIBED = OpenApiResponse(
    SubscribeOutputSerializer,
    description="Stored, or stored before: the same answer either way.",
)
_SUBSCRIBE_BODY_ERRORS = body_errors(max_bytes=_SubscribeApi.max_body_bytes)


@extend_schema_view(
    post=extend_schema(
        tags=["Checkout API"],
        operation_id="checkout_back_in_stock_subscribe",
        request=SubscribeInputSerializer,
        examples=_SUBSCRIBE_EXAMPLES,
        parameters=[RETRY_AFTER],
        responses={
            201: _SUBSCRIBED,
            400: _SUBSCRIBE_INVALID,
            403: error_response(
                "Back in stock is not switched on for this store.",
                back_in_stock_off=_BACK_IN_STOCK_OFF,
            ),
            **_SUBSCRIBE_BODY_ERRORS,
            429: throttled_response(per="from this client or for this address"),
        },
        description=_SUBSCRIBE_DOC + " Public; throttled per client and per address.",
        auth=[],
    )
)
class CheckoutSubscribeApi(_SubscribeApi):
    # Per client, counted with the per-address throttle in one round trip (backinstock.throttling).
    throttled_per_client = True
    plain_lane = True


@extend_schema_view(
    post=extend_schema(
        tags=["Shop API"],
        operation_id="shop_back_in_stock_subscribe",
        request=SubscribeInputSerializer,
        examples=_SUBSCRIBE_EXAMPLES,
        parameters=[RETRY_AFTER],
        responses={
            201: _SUBSCRIBED,
            400: _SUBSCRIBE_INVALID,
            **key_errors(
                realm="Shop API",
                also=", or back in stock is not switched on",
                back_in_stock_off=_BACK_IN_STOCK_OFF,
            ),
            **_SUBSCRIBE_BODY_ERRORS,
            429: throttled_response(per="for this address"),
        },
        description=_SUBSCRIBE_DOC + " Server-side; throttled per address.",
        auth=SHOP_API_SECURITY,
    )
)
class ShopSubscribeApi(_SubscribeApi):
    permission_classes = [HasShopApiKey]  # per address only, in the service


class SubscriptionOutputSerializer(serializers.Serializer[Any]):
    item = serializers.SerializerMethodField()
    product = serializers.CharField(source="variant.product.external_id")
    variant = serializers.CharField(source="variant.external_id")
    shipTo = serializers.SerializerMethodField()
    email = serializers.CharField()
    language = serializers.CharField(source="language.code")
    createdAt = serializers.DateTimeField(source="created_at")
    status = serializers.ChoiceField(
        choices=["pending", "subscribed", "failed"],
        help_text=(
            "`pending`: stored, not yet in Klaviyo (a worker pushes it within seconds); "
            "`subscribed`: accepted by Klaviyo, whose back-in-stock flow emails the address "
            "when the size is back; `failed`: Klaviyo refused it or retries ran out (the reason "
            "is shown in the admin, where it can be retried)."
        ),
    )

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
    klaviyoProfileDeletion = serializers.ChoiceField(
        choices=["requested"],
        required=False,
        help_text="Present when deleteKlaviyoProfile=true: the worker asks Klaviyo to delete it.",
    )


class EmailQuerySerializer(serializers.Serializer[Any]):
    email = serializers.CharField(max_length=254)


class EraseQuerySerializer(EmailQuerySerializer):
    deleteKlaviyoProfile = serializers.ChoiceField(choices=["true", "false"], required=False)


_EMAIL_PARAMETER = OpenApiParameter(
    "email",
    str,
    required=True,
    description="The address, matched by its canonical form (trimmed, Unicode-normalised, "
    "domain IDNA-encoded, lower-cased).",
    examples=[OpenApiExample("Ann", value="ann@example.com")],
)
_DELETE_PROFILE_PARAMETER = OpenApiParameter(
    "deleteKlaviyoProfile",
    str,
    enum=["true", "false"],
    description="true: also request Klaviyo's data-privacy deletion of the profile, which "
    "takes Klaviyo's copy of the subscriptions with it.",
)
_EMAIL_ERRORS = {
    400: error_response(
        "The `email` parameter is missing or too long.",
        missing_email={"email": "This field is required."},
    ),
    **key_errors(realm="Shop API"),
}


class ShopSubscriptionsApi(APIView):
    permission_classes = [HasShopApiKey]

    @extend_schema(
        tags=["Shop API"],
        operation_id="shop_back_in_stock_subscriptions_list",
        parameters=[_EMAIL_PARAMETER],
        responses={
            200: OpenApiResponse(
                SubscriptionListOutputSerializer,
                description="The address's subscriptions, oldest first; none is an empty list.",
            ),
            **_EMAIL_ERRORS,
        },
        description="Every back-in-stock subscription of one address.",
        auth=SHOP_API_SECURITY,
    )
    def get(self, request: Request) -> Response:
        email = _validated(EmailQuerySerializer, request.query_params.dict())["email"]
        subscriptions = selectors.subscription_list_for_email(email=email)
        data = SubscriptionOutputSerializer(subscriptions, many=True).data
        return Response({"subscriptions": data})

    @extend_schema(
        tags=["Shop API"],
        operation_id="shop_back_in_stock_subscriptions_erase",
        parameters=[_EMAIL_PARAMETER, _DELETE_PROFILE_PARAMETER],
        responses={
            200: OpenApiResponse(
                EraseOutputSerializer,
                description="Erased; `deleted` counts the subscriptions, and "
                "`klaviyoProfileDeletion` is `requested` when deleteKlaviyoProfile=true.",
            ),
            **_EMAIL_ERRORS,
        },
        description="Erase every back-in-stock subscription of one address. Klaviyo keeps its "
        "copy unless deleteKlaviyoProfile=true. Audited without keeping the address.",
        auth=SHOP_API_SECURITY,
    )
    def delete(self, request: Request) -> Response:
        query = _validated(EraseQuerySerializer, request.query_params.dict())
        delete_profile = query.get("deleteKlaviyoProfile") == "true"
        record = services.person_erase(
            email=query["email"], source="shop-api", delete_klaviyo_profile=delete_profile
        )
        answer: dict[str, Any] = {"deleted": record.subscriptions_deleted}
        if delete_profile:
            answer["klaviyoProfileDeletion"] = "requested"
        return Response(answer)
