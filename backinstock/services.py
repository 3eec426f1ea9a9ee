"""Writes: subscribing and erasing."""

import contextlib
import functools
import logging
import weakref
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, ProgrammingError, connection, transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from backinstock.emails import EmailInvalid, email_canonical, email_for_lookup
from backinstock.models import (
    BackInStockProduct,
    BackInStockVariant,
    ErasureRecord,
    ProfileDeletionRequest,
    Subscription,
    SubscriptionStatus,
    erasure_email_hash,
    erasure_email_hashes,
    product_external_id,
    variant_external_id,
)
from backinstock.throttling import (
    AddressPlace,
    ClientThrottle,
    subscribe_throttle_give_back,
    subscribe_throttles_take,
)
from config.api.errors import FeatureDisabled, InvalidInput
from config.api.fields import ascii_decimal
from config.correlation import correlation_id_current
from config.process_cache import recent, recent_forget
from operations.metrics import metric_count
from shop import selectors as shop_selectors

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SubscriptionCreateResult:
    subscription_id: int
    created: bool


@dataclass(frozen=True)
class _Resolved:
    """A request checked against the catalog: the ids it stands for."""

    display_item_id: int
    size_id: int
    country_id: int
    country_code: str
    state_id: int | None
    state_code: str | None
    language_id: int
    email: str

    def variant_external_id(self) -> str:
        return variant_external_id(
            product_external_id=self.product_external_id(), size_id=self.size_id
        )

    def product_external_id(self) -> str:
        return product_external_id(
            display_item_id=self.display_item_id,
            country_code=self.country_code,
            state_code=self.state_code,
        )


def back_in_stock_is_enabled() -> bool:
    """Asks the Klaviyo integration's switch through ``BACK_IN_STOCK_ENABLED_CHECK``; the answer
    is at most ``STOREFRONT_CACHE_SECONDS`` old (``config.process_cache``)."""
    check = import_string(settings.BACK_IN_STOCK_ENABLED_CHECK)
    return recent("back-in-stock-enabled", lambda: bool(check()))


def _parse_item(item: str) -> tuple[int, int] | None:
    """``"12366-23400"`` as (display item id, size id); None unless both are ASCII decimals."""
    display_item, dash, size = item.strip().partition("-")
    display_item_id, size_id = ascii_decimal(display_item), ascii_decimal(size)
    if not dash or display_item_id is None or size_id is None:
        return None
    return display_item_id, size_id


def _store_languages() -> shop_selectors.StoreLanguages:
    return recent("store-languages", shop_selectors.store_languages)


def _resolve(
    *, item: str, country_code: str, state_code: str | None, email: str, language_code: str | None
) -> _Resolved:
    """Checks every field against the catalog; raises one error naming every bad field.

    The catalog is asked once (``storefront_lookup``) per item and ship-to location, and the
    store's languages once (``store_languages``) where the request needs them; each answer is
    kept for ``STOREFRONT_CACHE_SECONDS`` (``config.process_cache``).
    """
    errors: dict[str, str] = {}

    ids = _parse_item(item)
    display_item_id, size_id = ids if ids else (None, None)
    state = state_code or None
    found = recent(
        f"storefront-lookup:{(display_item_id, size_id, country_code, state)!r}",
        lambda: shop_selectors.storefront_lookup(
            display_item_id=display_item_id,
            size_id=size_id,
            country_code=country_code,
            state_code=state,
        ),
    )
    if not found.item_found:
        errors["item"] = f"item {item} not found"
    elif found.country_id is not None and not found.item_priced:
        # No price in the ship-to country's pricelist: not sold there (CONTRACT §3), and Klaviyo
        # must never get a variant with an invented price.
        errors["item"] = f"item {item} is not sold in {country_code}"

    if found.country_id is None:
        errors["shipTo.country"] = f"country {country_code} is not a ship-to country"
    elif found.country_has_states:
        if not state_code:
            errors["shipTo.state"] = f"state is required for country {country_code}"
        elif found.state_id is None:
            errors["shipTo.state"] = f"state {state_code} not found in country {country_code}"
    elif state_code:
        errors["shipTo.state"] = f"country {country_code} has no states"

    canonical_email = ""
    try:
        canonical_email = email_canonical(email)
    except EmailInvalid as exc:
        errors["email"] = str(exc)

    language_id: int | None
    if language_code:
        language_id = _store_languages().id_for(language_code)
        if language_id is None:
            errors["language"] = "language not found"
    elif found.country_language_id is not None:
        language_id = found.country_language_id
    else:
        language_id = _store_languages().default_id
        if language_id is None and "shipTo.country" not in errors:
            errors["language"] = "no language is configured for this store"

    if errors:
        raise InvalidInput(errors)
    assert ids is not None and found.country_id is not None and language_id is not None
    return _Resolved(
        display_item_id=ids[0],
        size_id=ids[1],
        country_id=found.country_id,
        country_code=country_code,
        state_id=found.state_id,
        state_code=state_code if found.state_id is not None else None,
        language_id=language_id,
        email=canonical_email,
    )


def _variant_create(*, resolved: _Resolved) -> None:
    """Create the back-in-stock product and variant of the first request for them.

    Insert-if-absent, then read: concurrent first requests both succeed and agree, because
    external ids are unique. A variant left without its subscription (a crash in between) is
    what a later request needs anyway. The product and its variant are one transaction: where
    the size went away since the request's catalog answer was kept, the variant's foreign key
    refuses it (``IntegrityError``), and no product is left without a variant.
    """
    with transaction.atomic(savepoint=False):
        _product_and_variant_insert(resolved=resolved)


def _product_and_variant_insert(*, resolved: _Resolved) -> None:
    product_id = resolved.product_external_id()
    BackInStockProduct.objects.bulk_create(
        [
            BackInStockProduct(
                external_id=product_id,
                display_item_id=resolved.display_item_id,
                country_id=resolved.country_id,
                state_id=resolved.state_id,
            )
        ],
        ignore_conflicts=True,
    )
    product = BackInStockProduct.objects.get(external_id=product_id)
    BackInStockVariant.objects.bulk_create(
        [
            BackInStockVariant(
                external_id=resolved.variant_external_id(),
                product=product,
                size_id=resolved.size_id,
            )
        ],
        ignore_conflicts=True,
    )


# The insert-or-find statement, prepared once per database connection (a session-level
# PREPARE): PostgreSQL then neither parses nor plans it on every request, which took its CPU per
# subscribe from about 0.43 to 0.30 ms on the reference machine (bench/README.md, "Load").
# ``EXECUTE`` goes through Django's cursor like any query (logged, counted, wrapped). Where the
# session does not keep it (a pooler in transaction mode hands each statement to any server
# connection), the statement runs unprepared instead: never an error for that. Inside a
# transaction it always runs unprepared, since a failed statement would abort the transaction.
_INSERT_STATEMENT = "backinstock_subscription_insert"
_prepared_on: weakref.WeakSet[Any] = weakref.WeakSet()  # psycopg connections that have it


def _insert_sql(*, placeholders: list[str]) -> str:
    """The insert-or-find statement with these placeholders for its six values: the variant's
    external id, the address, the language id, the status, the correlation id, now."""
    variant, email, language, status, correlation, now = placeholders
    subscriptions, variants = Subscription._meta.db_table, BackInStockVariant._meta.db_table
    return f"""
        WITH variant AS (SELECT id FROM {variants} WHERE external_id = {variant}::varchar),
        inserted AS (
            INSERT INTO {subscriptions} (variant_id, email, language_id, status, attempts,
                                         last_error, correlation_id, created_at, updated_at)
            SELECT id, {email}::varchar, {language}::bigint, {status}::varchar, 0, '',
                   {correlation}::varchar, {now}::timestamptz, {now}::timestamptz
            FROM variant
            ON CONFLICT DO NOTHING
            RETURNING id
        )
        SELECT
            (SELECT id FROM variant),
            (SELECT id FROM inserted),
            (SELECT s.id FROM {subscriptions} s
             WHERE s.variant_id = (SELECT id FROM variant) AND s.email = {email}::varchar)
        """  # noqa: S608  (table names from the models; values are the statement's parameters)


def _subscription_insert_row(parameters: list[Any]) -> tuple[Any, ...] | None:
    """Run the insert-or-find statement: prepared if the session keeps it, else as it is."""
    connection.ensure_connection()
    with connection.cursor() as cursor:
        if not connection.in_atomic_block:
            if connection.connection not in _prepared_on:
                # Already there (a pooler's server session kept it): use it.
                with contextlib.suppress(ProgrammingError):
                    cursor.execute(
                        f"PREPARE {_INSERT_STATEMENT} AS "
                        + _insert_sql(placeholders=["$1", "$2", "$3", "$4", "$5", "$6"])
                    )
                _prepared_on.add(connection.connection)
            try:
                cursor.execute(f"EXECUTE {_INSERT_STATEMENT} (%s, %s, %s, %s, %s, %s)", parameters)
                return cursor.fetchone()
            except ProgrammingError:  # this session does not have it: nothing was done
                _prepared_on.discard(connection.connection)
        names = ["variant", "email", "language", "status", "correlation", "now"]
        cursor.execute(
            _insert_sql(placeholders=[f"%({name})s" for name in names]),
            dict(zip(names, parameters, strict=True)),
        )
        return cursor.fetchone()


def _subscription_insert(*, resolved: _Resolved) -> tuple[int, bool] | None:
    """Insert the subscription unless it exists; (id, whether it was new), None if no variant.

    One statement does the usual request: find the back-in-stock variant by its external id,
    ``INSERT ... ON CONFLICT DO NOTHING RETURNING id`` against the unique index on (email,
    variant) (the address is canonical), and read the existing row's id for a repeat. Race-free, no
    savepoint, and outside a transaction it commits by itself, so neither a new nor a repeated
    subscription pays for BEGIN/COMMIT round trips; both cost the same. Django's bulk_create
    cannot return the id of a row it may skip, hence the SQL, prepared once per connection
    outside transactions (``_INSERT_STATEMENT``; unprepared where the session does not keep it).
    """
    if connection.vendor != "postgresql":
        return _subscription_insert_portable(resolved=resolved)
    parameters: list[Any] = [
        resolved.variant_external_id(),
        resolved.email,
        resolved.language_id,
        SubscriptionStatus.PENDING,
        correlation_id_current(),
        timezone.now(),
    ]
    row = _subscription_insert_row(parameters)
    assert row is not None
    variant_id, inserted_id, existing_id = row
    if variant_id is None:
        return None
    if inserted_id is not None:
        return int(inserted_id), True
    if existing_id is None:
        # Inserted by a request that committed after this statement's snapshot was taken (ON
        # CONFLICT waited for it): visible to a new statement.
        existing = Subscription.objects.filter(variant_id=variant_id, email=resolved.email)
        existing_id = existing.values_list("id", flat=True).get()
    return int(existing_id), False


def _subscription_insert_portable(*, resolved: _Resolved) -> tuple[int, bool] | None:
    """``_subscription_insert`` for databases without data-modifying CTEs (SQLite, the demo)."""
    variant_id = (
        BackInStockVariant.objects.filter(external_id=resolved.variant_external_id())
        .values_list("id", flat=True)
        .first()
    )
    if variant_id is None:
        return None
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {Subscription._meta.db_table} (variant_id, email, language_id, status,"  # noqa: S608
            " attempts, last_error, correlation_id, created_at, updated_at)"
            " VALUES (%s, %s, %s, %s, 0, '', %s, %s, %s) ON CONFLICT DO NOTHING RETURNING id",
            [
                variant_id,
                resolved.email,
                resolved.language_id,
                SubscriptionStatus.PENDING,
                correlation_id_current(),
                now,
                now,
            ],
        )
        row = cursor.fetchone()
    if row is not None:
        return int(row[0]), True
    existing = Subscription.objects.filter(variant_id=variant_id, email=resolved.email).values_list(
        "id", flat=True
    )
    return int(existing.get()), False


def subscription_create(
    *,
    item: str,
    country_code: str,
    state_code: str | None,
    email: str,
    language_code: str | None,
    client_throttle: ClientThrottle | None = None,
) -> SubscriptionCreateResult:
    """Store a back-in-stock subscription as ``pending`` (flow 1 of ARCHITECTURE.md).

    Creates the virtual back-in-stock product and variant on first need. A repeat (same canonical
    address, see ``backinstock.emails``, and same variant) finds the existing subscription and
    changes nothing; the database's unique constraint makes concurrent identical requests create
    one row. A new and a repeated subscription do the same work, so that neither the answer nor
    its timing tells whether the address was already subscribed. Nothing here calls Klaviyo or
    the broker: the pending row is the outbox, which the dispatcher in the worker reads
    (``klaviyo_sync.services.dispatch``). Over the per-address throttle, raises
    ``SubscribeThrottled``: an address's window counts the distinct subscriptions asked for in
    it, a replay takes no second place, and a full window refuses a repeat like a new one; the
    request is counted against ``client_throttle`` (the entry point's per-client throttle) in the
    same round trip (``backinstock.throttling``).
    """
    if not back_in_stock_is_enabled():
        raise FeatureDisabled(
            {"backInStock": "Back-in-stock subscriptions are not enabled for this store."}
        )
    resolve = functools.partial(
        _resolve,
        item=item,
        country_code=country_code,
        state_code=state_code,
        email=email,
        language_code=language_code,
    )
    resolved = resolve()
    place = _throttles_take(resolved=resolved, client_throttle=client_throttle)
    try:
        return _subscription_store(resolved=resolved)
    except IntegrityError:
        if connection.in_atomic_block:  # the transaction is spoilt: the caller's to handle
            raise
    # A kept answer of the catalog named a row deleted since (an operator removed a language,
    # country, state or size less than STOREFRONT_CACHE_SECONDS ago): ask it afresh, once. The
    # place taken in the address's window is given back first, so that a request the catalog
    # now refuses takes none, and one now for another variant takes one, not two. The client
    # was counted once already.
    recent_forget()
    subscribe_throttle_give_back(place)
    resolved = resolve()
    _throttles_take(resolved=resolved, client_throttle=client_throttle)
    return _subscription_store(resolved=resolved)


def _throttles_take(
    *, resolved: _Resolved, client_throttle: ClientThrottle | None
) -> AddressPlace | None:
    # Only a valid request counts against its address: invalid ones naming someone else's
    # address must not lock that person out (raises ``SubscribeThrottled`` when over a limit).
    return subscribe_throttles_take(
        email=resolved.email,
        variant=resolved.variant_external_id(),
        client_throttle=client_throttle,
    )


def _subscription_store(*, resolved: _Resolved) -> SubscriptionCreateResult:
    """Store the resolved subscription (``subscription_create``), its throttles taken.

    Raises ``IntegrityError`` where ``resolved`` names a language, country, state or size that
    is no longer in the catalog.
    """
    inserted = _subscription_insert(resolved=resolved)
    if inserted is None:  # the first request for this location and size
        _variant_create(resolved=resolved)
        inserted = _subscription_insert(resolved=resolved)
        if inserted is None:
            raise RuntimeError(f"back-in-stock variant {resolved.variant_external_id()} vanished")
    subscription_id, created = inserted
    metric_count("subscriptions_accepted", outcome="new" if created else "repeat")
    return SubscriptionCreateResult(subscription_id=subscription_id, created=created)


PROFILE_DELETION_REQUESTED = "requested; the worker sends it"


def person_erase(*, email: str, source: str, delete_klaviyo_profile: bool) -> ErasureRecord:
    """Erase every subscription of an address, audited; the Shop API's and the command's erasure.

    The address is matched by its canonical form (``email_canonical(lookup=True)``, so rows stored
    before non-ASCII local parts were refused are found too). Raises ``InvalidInput`` on
    ``email`` when it is not an address: nothing is erased and nothing audited. See
    ``_address_erase`` for the audit and the Klaviyo profile deletion.
    """
    return _address_erase(
        canonical=email_for_lookup(email),
        source=source,
        delete_klaviyo_profile=delete_klaviyo_profile,
    )


def persons_erase(
    *, subscription_ids: list[int], source: str, delete_klaviyo_profile: bool
) -> list[ErasureRecord]:
    """Erase every subscription of the addresses of these subscriptions; one audit per address.

    The admin's "Erase this address": the addresses are taken as stored, so even a row whose
    address today's rules would refuse can be erased by its owner's request.
    """
    emails = Subscription.objects.filter(id__in=subscription_ids).values_list("email", flat=True)
    return [
        _address_erase(
            canonical=email, source=source, delete_klaviyo_profile=delete_klaviyo_profile
        )
        for email in sorted(set(emails))
    ]


def subscriptions_delete(*, subscription_ids: list[int], source: str) -> list[ErasureRecord]:
    """Delete exactly these subscriptions, audited as erasures (one per address): admin's delete.

    Klaviyo keeps its copy of each (it has no API to delete one back-in-stock subscription).
    """
    emails = Subscription.objects.filter(id__in=subscription_ids).values_list("email", flat=True)
    return [
        _address_erase(
            canonical=email,
            source=source,
            delete_klaviyo_profile=False,
            subscription_ids=subscription_ids,
        )
        for email in sorted(set(emails))
    ]


def _address_erase(
    *,
    canonical: str,
    source: str,
    delete_klaviyo_profile: bool,
    subscription_ids: list[int] | None = None,
) -> ErasureRecord:
    """Delete the subscriptions of one canonical address (all, or only ``subscription_ids``).

    The audit record keeps a keyed hash of the address (``erasure_email_hash``), never the
    address, with how many subscriptions went and who asked (``source``: shop-api, command,
    admin). Klaviyo keeps its copy of back-in-stock subscriptions; with
    ``delete_klaviyo_profile`` a ``ProfileDeletionRequest`` is stored in the same transaction and
    announced after commit, and the worker asks Klaviyo's data-privacy deletion of the profile
    (which takes the subscriptions with it). Nothing here waits on Klaviyo or the broker.
    """
    with transaction.atomic():
        rows = Subscription.objects.filter(email=canonical)
        if subscription_ids is not None:
            rows = rows.filter(id__in=subscription_ids)
        _, deleted_by_model = rows.delete()
        record = ErasureRecord.objects.create(
            email_hash=erasure_email_hash(canonical),
            subscriptions_deleted=deleted_by_model.get(Subscription._meta.label, 0),
            source=source,
            klaviyo_deletion_requested=delete_klaviyo_profile,
            klaviyo_deletion_result=PROFILE_DELETION_REQUESTED if delete_klaviyo_profile else "",
        )
        if delete_klaviyo_profile:
            # The outbox of the deletion: the dispatcher in the worker sends it.
            ProfileDeletionRequest.objects.create(erasure=record, email=canonical)
    return record


def erased_address_pushed(*, email: str) -> bool:
    """A push of this canonical address reached Klaviyo after its subscription was erased (the
    erasure came while the push was on the wire), so Klaviyo holds the profile and the
    back-in-stock subscription again. If the latest erasure of the address (within a day) asked
    for the Klaviyo profile to go, ask again, once: a new ``ProfileDeletionRequest`` unless one is
    still waiting. Returns whether one was stored. An erasure without profile deletion asked for
    nothing more in Klaviyo, so nothing is done.
    """
    record = (
        ErasureRecord.objects.filter(
            email_hash__in=erasure_email_hashes(email),
            created_at__gte=timezone.now() - timedelta(days=1),
        )
        .order_by("-created_at")
        .first()
    )
    if record is None or not record.klaviyo_deletion_requested:
        return False
    with transaction.atomic():
        if ProfileDeletionRequest.objects.filter(erasure=record).exists():
            return False  # not sent yet: it deletes what the push created
        record.klaviyo_deletion_result = PROFILE_DELETION_REQUESTED
        record.save(update_fields=["klaviyo_deletion_result"])
        ProfileDeletionRequest.objects.create(erasure=record, email=email)
    logger.warning("a push reached Klaviyo after its address was erased: deletion asked again")
    return True


def subscriptions_retry(*, subscription_ids: list[int]) -> int:
    """Put these subscriptions back to ``pending`` if they ``failed``; returns how many.

    The operator's retry (CONTRACT §4: failed is visible and retryable in the admin). Attempts
    and the last error are cleared (the push attempts' history is kept), so the dispatcher pushes
    it again within a second. Steps Klaviyo already accepted are not repeated. Subscriptions in
    any other state are left alone.
    """
    with transaction.atomic():
        ids = list(
            Subscription.objects.select_for_update()
            .filter(id__in=subscription_ids, status=SubscriptionStatus.FAILED)
            .values_list("id", flat=True)
        )
        Subscription.objects.filter(id__in=ids).update(
            status=SubscriptionStatus.PENDING,
            attempts=0,
            last_error="",
            push_claimed_until=None,
            updated_at=timezone.now(),
        )
    return len(ids)
