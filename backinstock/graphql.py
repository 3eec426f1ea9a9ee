"""Centra's Storefront API (GraphQL): the ``subscribeToBackInStock`` mutation (CONTRACT §3b).

``POST /api/storefront-api/graphql``. The type and field names are Centra's, so that storefronts
written against Centra's Storefront API work unchanged. Behind it is the Checkout API's path:
the same parsing and messages (``subscription_create_from_body``), the same service, identity
and throttles, and the same storage. A validation error is an HTTP 200 with ``subscribed:
false`` and one ``userErrors`` entry per bad field, at Centra's input paths; a throttled request
is an HTTP 429 with ``Retry-After``. Everything that is not GraphQL (a wrong method, content
type or size) is answered in the contract's error shape, like every path under ``/api/``.
The schema's SDL is served at ``/api/storefront-api/schema.graphql``.
"""

import functools
import json
import logging
import math
from typing import Any

import strawberry
from cross_web import HTTPException  # what strawberry's views raise
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.views.decorators.csrf import csrf_exempt
from graphql import GraphQLError, OperationDefinitionNode, parse
from rest_framework import exceptions, serializers
from rest_framework.throttling import BaseThrottle
from strawberry.django.views import GraphQLView
from strawberry.extensions import MaskErrors
from strawberry.types import ExecutionContext as StrawberryExecutionContext
from strawberry.types import ExecutionResult

from backinstock.apis import SUBSCRIBE_MAX_BODY_BYTES, subscription_create_from_body
from backinstock.services import back_in_stock_is_enabled
from backinstock.throttling import SubscribeThrottled, client_throttled
from config.api.errors import ApplicationError
from config.api.exceptions import api_error_response, flatten_errors

logger = logging.getLogger(__name__)

MUTATION = "subscribeToBackInStock"

# The Checkout API's field names for errors → Centra's input paths. Errors about no field
# (back in stock switched off, throttling) have the mutation's path.
_INPUT_PATHS = {
    "item": ["item"],
    "shipTo": ["shipTo"],
    "shipTo.country": ["shipTo", "countryCode"],
    "shipTo.state": ["shipTo", "stateCode"],
    "email": ["email"],
    "language": ["languageCode"],
}


@strawberry.input(description="Where the parcel would go.")
class CountryStateInput:
    country_code: str = strawberry.field(
        description='ISO 3166-1 alpha-2 code of a ship-to country, e.g. "SE".'
    )
    state_code: str | None = strawberry.field(
        default=strawberry.UNSET,
        description='Required when the country has states (e.g. "NY" in "US"), refused otherwise.',
    )


@strawberry.input(description="One size, ship-to location and address to tell when it is back.")
class BackInStockSubscribeInput:
    item: str = strawberry.field(description='"<displayItemId>-<sizeId>", e.g. "12366-23400".')
    ship_to: CountryStateInput
    email: str | None = strawberry.field(
        default=strawberry.UNSET, description="The shopper's address."
    )
    language_code: str | None = strawberry.field(
        default=strawberry.UNSET,
        description="A configured language code; defaults to the country's, then the store's.",
    )


@strawberry.type(description="A problem with the input, or why nothing was stored.")
class UserError:
    message: str
    path: list[str] | None = strawberry.field(
        description='Where: e.g. ["subscribeToBackInStock", "input", "item"].'
    )


@strawberry.type
class StockSubscribePayload:
    subscribed: bool = strawberry.field(
        description="True once stored; a repeat gets the same answer as a new subscription."
    )
    user_errors: list[UserError]


def _user_errors(errors: dict[str, str]) -> list[UserError]:
    """The Checkout API's ``{"shipTo.country": "..."}`` as Centra's user errors."""
    return [
        UserError(
            message=message,
            path=[MUTATION, "input", *_INPUT_PATHS[field]] if field in _INPUT_PATHS else [MUTATION],
        )
        for field, message in errors.items()
    ]


def _body(subscription: BackInStockSubscribeInput) -> dict[str, Any]:
    """The mutation's input as the Checkout API's body; what is null or absent is left out."""
    fields = {
        "state": subscription.ship_to.state_code,
        "email": subscription.email,
        "language": subscription.language_code,
    }
    given = {key: value for key, value in fields.items() if isinstance(value, str)}
    ship_to = {"country": subscription.ship_to.country_code}
    if "state" in given:
        ship_to["state"] = given.pop("state")
    return {"item": subscription.item, "shipTo": ship_to, **given}


@strawberry.type
class Query:
    @strawberry.field(description="Whether the store takes back-in-stock subscriptions now.")
    def back_in_stock_enabled(self) -> bool:
        return back_in_stock_is_enabled()


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description=(
            "Store a back-in-stock subscription (the Checkout API's rules and answers). Klaviyo "
            "is never called in the request: a worker pushes the subscription."
        )
    )
    def subscribe_to_back_in_stock(
        self,
        info: strawberry.Info,
        input: BackInStockSubscribeInput,  # Centra's argument name
    ) -> StockSubscribePayload:
        # DRF's get_ident reads only META, which Django's request has as DRF's does.
        client = BaseThrottle().get_ident(info.context.request)
        try:
            # Per client and per address as the Checkout API (backinstock.throttling).
            with client_throttled(client=client) as throttle:
                subscription_create_from_body(_body(input), client_throttle=throttle)
        except SubscribeThrottled as exc:
            retry_after = max(math.ceil(exc.wait), 1)
            info.context.response.status_code = exc.status_code
            info.context.response["Retry-After"] = str(retry_after)
            errors = {"throttle": str(exceptions.Throttled(retry_after).detail)}
            return StockSubscribePayload(subscribed=False, user_errors=_user_errors(errors))
        except serializers.ValidationError as exc:
            return StockSubscribePayload(
                subscribed=False, user_errors=_user_errors(flatten_errors(exc.detail))
            )
        except ApplicationError as exc:
            return StockSubscribePayload(subscribed=False, user_errors=_user_errors(exc.errors))
        return StockSubscribePayload(subscribed=True, user_errors=[])


def _is_ours(error: GraphQLError) -> bool:
    """Whether ``error`` is a failure of ours rather than a refusal of the client's request.

    An exception raised while executing (in a resolver, the service, the database) reaches
    graphql-core as an ``original_error`` of another class. graphql-core's own refusals have no
    original error (syntax, validation against the schema) or a ``GraphQLError`` one: a variable
    whose value is not of its declared type is refused by input coercion (GraphQL spec §6.1.2,
    CoerceVariableValues), which wraps the coercion's ``GraphQLError``.
    """
    original = error.original_error
    return original is not None and not isinstance(original, GraphQLError)


def operation_selection_problem(*, query: str | None, operation_name: str | None) -> str | None:
    """Why the document does not name exactly one operation to run, or None when it does.

    The GraphQL spec's GetOperation (§6.1): without ``operationName`` the document must hold
    exactly one operation; with it, an operation of that name. Strawberry otherwise runs the
    first operation of a document that has several. A document that does not parse is left to
    the schema, which says why; the body is at most 8 KB, so parsing it twice costs little.
    """
    if not query:
        return None
    try:
        document = parse(query)
    except GraphQLError:
        return None
    operations = [
        node for node in document.definitions if isinstance(node, OperationDefinitionNode)
    ]
    if operation_name is None:
        if len(operations) > 1:
            return "Must provide operation name if query contains multiple operations."
        return None
    if not any(node.name and node.name.value == operation_name for node in operations):
        return f'Unknown operation named "{operation_name}".'
    return None


class _Schema(strawberry.Schema):
    def execute_sync(self, query: str | None, *args: Any, **kwargs: Any) -> ExecutionResult:
        """Refuses a document whose operation to run is not named as the spec requires
        (``operation_selection_problem``), in GraphQL's error shape, before anything runs."""
        problem = operation_selection_problem(
            query=query, operation_name=kwargs.get("operation_name")
        )
        if problem is None:
            return super().execute_sync(query, *args, **kwargs)
        error = GraphQLError(problem)
        self.process_errors([error])
        return ExecutionResult(data=None, errors=[error])

    def process_errors(
        self,
        errors: list[GraphQLError],
        execution_context: StrawberryExecutionContext | None = None,
    ) -> None:
        """A request refused (``_is_ours`` is false) is the client's mistake: noted, not an error
        of ours. A failure of ours is logged with its traceback."""
        for error in errors:
            if _is_ours(error):
                logger.error("storefront GraphQL resolver failed", exc_info=error.original_error)
            else:
                logger.info("storefront GraphQL request refused: %s", error.message)


# An exception in a resolver reaches the client as "Internal server error." without its text,
# as the Checkout API's 500 does; the schema's own refusals keep their messages.
schema = _Schema(
    query=Query,
    mutation=Mutation,
    extensions=[
        functools.partial(
            MaskErrors, should_mask_error=_is_ours, error_message="Internal server error."
        )
    ],
)


def _body_is_json_object(body: bytes) -> bool:
    """Strawberry reads ``query`` from any JSON body and fails (a 500) on ``null`` or ``5``, and
    on a body that is not UTF-8 (JSON is UTF-8, RFC 8259 §8.1), lone surrogates encoded included."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    try:
        return isinstance(json.loads(text), dict)
    except (ValueError, RecursionError):
        return True  # not JSON at all: strawberry answers that as a 400 itself


class StorefrontGraphQLView(GraphQLView):
    """GraphQL over ``POST`` with a JSON body of at most 8 KB, as the Checkout API takes."""

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if request.method != "POST":
            response = api_error_response(
                key="method", message=f'Method "{request.method}" not allowed.', status_code=405
            )
            response["Allow"] = "POST, OPTIONS"
            return response
        if request.content_type != "application/json":
            return api_error_response(
                key="body",
                message=f'Unsupported media type "{request.content_type}" in request.',
                status_code=415,
            )
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return api_error_response(
                key="body", message="Invalid Content-Length header.", status_code=400
            )
        if declared > SUBSCRIBE_MAX_BODY_BYTES:
            return api_error_response(
                key="body",
                message=f"Request body is larger than {SUBSCRIBE_MAX_BODY_BYTES} bytes.",
                status_code=413,
            )
        if not _body_is_json_object(request.body):
            return api_error_response(
                key="body",
                message="The body must be a JSON object with a `query`.",
                status_code=400,
            )
        try:
            return self.run(request=request)
        except HTTPException as exc:
            return api_error_response(key="body", message=exc.reason, status_code=exc.status_code)


# No GraphiQL page: it loads its scripts from a CDN; introspection serves the tools.
storefront_graphql = csrf_exempt(
    StorefrontGraphQLView.as_view(schema=schema, graphql_ide=None, allow_queries_via_get=False)
)


def storefront_sdl(request: HttpRequest) -> HttpResponse:
    """The Storefront API's schema in GraphQL SDL, as text a browser shows."""
    if request.method not in ("GET", "HEAD"):
        return api_error_response(
            key="method", message=f'Method "{request.method}" not allowed.', status_code=405
        )
    response = HttpResponse(schema.as_str(), content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = 'inline; filename="storefront-api.graphql"'
    return response
