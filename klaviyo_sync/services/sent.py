"""What the current Klaviyo account was last sent: remembered, looked up, and forgotten.

One place for the ``SentCatalogObject`` cache. Every read and write is scoped to the account
configured now (``klaviyo_sync.accounts``) and to the flow that owns the object. Klaviyo is the
truth: when it answers that an object does not exist, or the reconciliation's read-back misses
it, the memory of it is forgotten and the owning flow creates it again.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db.models import QuerySet
from django.utils import timezone

from klaviyo_sync.accounts import current_account
from klaviyo_sync.client import KlaviyoError, KlaviyoPermanentError
from klaviyo_sync.models import CatalogObjectOwner, SentCatalogObject

CATALOG = CatalogObjectOwner.CATALOG
BACK_IN_STOCK = CatalogObjectOwner.BACK_IN_STOCK

# Klaviyo's words for an object that is not there: "Catalog variant `X` does not exist."
MISSING_MARKERS = ("does not exist", "not found")


def detail_says_missing(detail: str) -> bool:
    """Whether Klaviyo's error detail says the object (or one it points at) does not exist."""
    text = detail.lower()
    return any(marker in text for marker in MISSING_MARKERS)


def klaviyo_says_missing(exc: KlaviyoError) -> bool:
    """Whether Klaviyo refused a call because the object (or one it points at) does not exist."""
    return isinstance(exc, KlaviyoPermanentError) and (
        exc.status == 404 or detail_says_missing(exc.detail)
    )


def sent_objects(
    *, owner: str | None, kind: str, external_ids: Iterable[str] | None = None
) -> QuerySet[SentCatalogObject]:
    """The current account's records of ``owner``'s objects of ``kind`` (every owner's when
    None; all, or these ids)."""
    rows = SentCatalogObject.objects.filter(account=current_account(), kind=kind)
    if owner is not None:
        rows = rows.filter(owner=owner)
    if external_ids is not None:
        rows = rows.filter(external_id__in=list(external_ids))
    return rows


def sent_remember(
    *,
    owner: str,
    kind: str,
    hashes: dict[str, str],
    inventory: dict[str, int] | None = None,
) -> None:
    """Klaviyo accepted these objects (external id → payload hash), in one upsert.

    ``inventory``: the stock figures Klaviyo now has for these variants; left as they are when
    not given.
    """
    if not hashes:
        return
    now = timezone.now()
    account = current_account()
    fields = ["owner", "payload_hash", "exists_in_klaviyo", "last_error", "sent_at"]
    if inventory is not None:
        fields.append("inventory_quantity")
    SentCatalogObject.objects.bulk_create(
        [
            SentCatalogObject(
                account=account,
                owner=owner,
                kind=kind,
                external_id=external_id,
                payload_hash=value,
                inventory_quantity=(inventory or {}).get(external_id),
                exists_in_klaviyo=True,
                last_error="",
                sent_at=now,
            )
            for external_id, value in hashes.items()
        ],
        batch_size=1000,
        update_conflicts=True,
        unique_fields=["account", "kind", "external_id"],
        update_fields=fields,
    )


def sent_refused(*, owner: str, kind: str, failures: dict[str, str]) -> None:
    """Klaviyo refused these objects (external id → its detail): kept for the admin to show."""
    if not failures:
        return
    account = current_account()
    SentCatalogObject.objects.bulk_create(
        [
            SentCatalogObject(
                account=account,
                owner=owner,
                kind=kind,
                external_id=external_id,
                last_error=detail[:2000],
            )
            for external_id, detail in failures.items()
        ],
        batch_size=1000,
        update_conflicts=True,
        unique_fields=["account", "kind", "external_id"],
        update_fields=["last_error"],
    )


def sent_forget(*, kind: str, external_ids: Iterable[str]) -> int:
    """Klaviyo does not have these objects (any owner): the next send creates them anew.

    Returns how many remembered objects were forgotten. The figure of a forgotten variant is
    cleared too, so that its next creation carries the current figure.
    """
    return SentCatalogObject.objects.filter(
        account=current_account(),
        kind=kind,
        external_id__in=list(external_ids),
        exists_in_klaviyo=True,
    ).update(exists_in_klaviyo=False, payload_hash="", inventory_quantity=None)


def sent_figures_set(*, figures: dict[str, int], at: datetime) -> None:
    """Klaviyo accepted these stock figures (variant external id → figure), in one statement
    per distinct figure (a stock push sends few distinct figures, often hundreds of variants)."""
    by_figure: dict[int, list[str]] = {}
    for external_id, figure in figures.items():
        by_figure.setdefault(figure, []).append(external_id)
    account = current_account()
    for figure, external_ids in by_figure.items():
        SentCatalogObject.objects.filter(
            account=account, kind="variant", external_id__in=external_ids
        ).update(inventory_quantity=figure, sent_at=at)
