"""Writes: subscribing and erasing."""

from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils.module_loading import import_string

from backinstock.emails import email_is_valid, email_match_key, email_normalize
from backinstock.hooks import announce_subscription_created
from backinstock.models import (
    BackInStockProduct,
    BackInStockVariant,
    Subscription,
    product_external_id,
    variant_external_id,
)
from config.api.errors import FeatureDisabled, InvalidInput
from shop import selectors as shop_selectors
from shop.models import Country, Language, Size, State


@dataclass(frozen=True)
class SubscriptionCreateResult:
    subscription: Subscription
    created: bool


@dataclass(frozen=True)
class _Resolved:
    size: Size
    country: Country
    state: State | None
    language: Language
    email: str


def back_in_stock_is_enabled() -> bool:
    """Asks the Klaviyo integration's switch through ``BACK_IN_STOCK_ENABLED_CHECK``."""
    check = import_string(settings.BACK_IN_STOCK_ENABLED_CHECK)
    return bool(check())


def _parse_item(item: str) -> tuple[int, int] | None:
    display_item, dash, size = item.strip().partition("-")
    if not dash or not display_item.isdigit() or not size.isdigit():
        return None
    return int(display_item), int(size)


def _resolve(
    *, item: str, country_code: str, state_code: str | None, email: str, language_code: str | None
) -> _Resolved:
    """Checks every field against the catalog; raises one error naming every bad field."""
    errors: dict[str, str] = {}

    ids = _parse_item(item)
    size = shop_selectors.size_get_for_item(display_item_id=ids[0], size_id=ids[1]) if ids else None
    if size is None:
        errors["item"] = f"item {item} not found"

    country = shop_selectors.ship_to_country_get(code=country_code)
    state = None
    if country is None:
        errors["shipTo.country"] = f"country {country_code} is not a ship-to country"
    elif country.has_states:  # type: ignore[attr-defined]
        if not state_code:
            errors["shipTo.state"] = f"state is required for country {country_code}"
        else:
            state = shop_selectors.state_get(country=country, code=state_code)
            if state is None:
                errors["shipTo.state"] = f"state {state_code} not found in country {country_code}"
    elif state_code:
        errors["shipTo.state"] = f"country {country_code} has no states"

    normalized_email = email_normalize(email)
    if not normalized_email:
        errors["email"] = "email is required"
    elif not email_is_valid(normalized_email):
        errors["email"] = "email is not a valid address"

    language: Language | None
    if language_code:
        language = shop_selectors.language_get(code=language_code)
        if language is None:
            errors["language"] = "language not found"
    elif country is not None and country.language is not None:
        language = country.language
    else:
        language = shop_selectors.language_default()
        if language is None and "shipTo.country" not in errors:
            errors["language"] = "no language is configured for this store"

    if errors:
        raise InvalidInput(errors)
    assert size is not None and country is not None and language is not None
    return _Resolved(
        size=size, country=country, state=state, language=language, email=normalized_email
    )


def _variant_get_or_create(*, resolved: _Resolved) -> BackInStockVariant:
    display_item_id = resolved.size.variant.display_item.id
    product_id = product_external_id(
        display_item_id=display_item_id,
        country_code=resolved.country.code,
        state_code=resolved.state.code if resolved.state else None,
    )
    variant_id = variant_external_id(product_external_id=product_id, size_id=resolved.size.id)
    # The usual case, a variant someone already asked for, costs one query.
    variant = BackInStockVariant.objects.filter(external_id=variant_id).first()
    if variant is not None:
        return variant
    # First request for this location and size. Insert-if-absent, then read: concurrent first
    # requests both succeed and agree, because external ids are unique.
    BackInStockProduct.objects.bulk_create(
        [
            BackInStockProduct(
                external_id=product_id,
                display_item_id=display_item_id,
                country=resolved.country,
                state=resolved.state,
            )
        ],
        ignore_conflicts=True,
    )
    product = BackInStockProduct.objects.get(external_id=product_id)
    BackInStockVariant.objects.bulk_create(
        [BackInStockVariant(external_id=variant_id, product=product, size=resolved.size)],
        ignore_conflicts=True,
    )
    return BackInStockVariant.objects.get(external_id=variant_id)


def subscription_create(
    *, item: str, country_code: str, state_code: str | None, email: str, language_code: str | None
) -> SubscriptionCreateResult:
    """Store a back-in-stock subscription as ``pending`` (flow 1 of ARCHITECTURE.md).

    Creates the virtual back-in-stock product and variant on first need. A repeat (same address,
    case-insensitively, and same variant) finds the existing subscription and changes nothing;
    the database's unique constraint makes concurrent identical requests create one row. Nothing
    here calls Klaviyo: ``subscription_created`` is announced after commit for the worker.
    """
    if not back_in_stock_is_enabled():
        raise FeatureDisabled(
            {"backInStock": "Back-in-stock subscriptions are not enabled for this store."}
        )
    resolved = _resolve(
        item=item,
        country_code=country_code,
        state_code=state_code,
        email=email,
        language_code=language_code,
    )
    with transaction.atomic():
        variant = _variant_get_or_create(resolved=resolved)
        try:
            with transaction.atomic():
                subscription = Subscription.objects.create(
                    variant=variant, email=resolved.email, language=resolved.language
                )
        except IntegrityError:
            existing = Subscription.objects.get(
                variant=variant, email__lower=email_match_key(resolved.email)
            )
            return SubscriptionCreateResult(subscription=existing, created=False)
        announce_subscription_created(subscription_id=subscription.id)
    return SubscriptionCreateResult(subscription=subscription, created=True)


def subscriptions_erase(*, email: str) -> int:
    """Delete every subscription of an address (matched case-insensitively); returns how many."""
    deleted, _ = Subscription.objects.filter(email__lower=email_match_key(email)).delete()
    return deleted


def subscriptions_retry(*, subscription_ids: list[int]) -> int:
    """Put these subscriptions back to ``pending`` if they ``failed``; returns how many.

    The operator's retry (CONTRACT §4: failed is visible and retryable in the admin). Attempts
    and the last error are cleared so the push starts afresh; the periodic sweep of pending rows
    and the worker pick them up. Subscriptions in any other state are left alone.
    """
    from django.utils import timezone

    from backinstock.models import SubscriptionStatus

    return Subscription.objects.filter(
        id__in=subscription_ids, status=SubscriptionStatus.FAILED
    ).update(
        status=SubscriptionStatus.PENDING, attempts=0, last_error="", updated_at=timezone.now()
    )
