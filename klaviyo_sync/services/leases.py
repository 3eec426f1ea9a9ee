"""Named leases in the database: state that more than one process reads lives where all see it.

A lease is held by one holder until it expires or is released. Taking it is one conditional
``UPDATE`` (after an ``INSERT`` that ignores an existing row), atomic on PostgreSQL and SQLite
alike, so two processes can never both hold it. The demo runs without Redis, and a marker kept in
one process's local-memory cache is invisible to the others (issue: a stock change reached Klaviyo
after 51 s because the web process's "push already queued" marker hid the worker's).
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.utils import timezone

from klaviyo_sync.models import Lease


def lease_acquire(*, name: str, seconds: float, holder: str | None = None) -> str | None:
    """Take lease ``name`` for ``seconds``; returns the holder token, or None if someone holds it.

    ``holder``: renew a lease already held under this token (returns the token when it still
    held it or the lease had expired).
    """
    now = timezone.now()
    token = holder or uuid.uuid4().hex
    Lease.objects.bulk_create([Lease(name=name, holder="", expires_at=now)], ignore_conflicts=True)
    taken = (
        Lease.objects.filter(name=name)
        .filter(expires_at__lte=now)
        .update(holder=token, expires_at=now + timedelta(seconds=seconds))
    )
    if not taken and holder is not None:
        taken = Lease.objects.filter(name=name, holder=holder).update(
            expires_at=now + timedelta(seconds=seconds)
        )
    return token if taken else None


def lease_release(*, name: str, holder: str | None = None) -> None:
    """Give lease ``name`` back (only if ``holder`` still holds it, when given)."""
    leases = Lease.objects.filter(name=name)
    if holder is not None:
        leases = leases.filter(holder=holder)
    leases.update(holder="", expires_at=timezone.now())


def lease_is_held(*, name: str) -> bool:
    """Whether someone holds lease ``name`` now."""
    return Lease.objects.filter(name=name, expires_at__gt=timezone.now()).exists()
