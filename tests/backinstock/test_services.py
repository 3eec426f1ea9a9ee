"""The subscription insert on databases without data-modifying CTEs (SQLite, the demo)."""

import pytest

from backinstock.services import _Resolved, _subscription_insert_portable, _variant_create

pytestmark = pytest.mark.usefixtures("catalog")


def resolved(catalog, email: str) -> _Resolved:
    return _Resolved(
        display_item_id=12366,
        size_id=23400,
        country_id=catalog.sweden.id,
        country_code="SE",
        state_id=None,
        state_code=None,
        language_id=catalog.swedish.id,
        email=email,
    )


def test_the_portable_insert_creates_once_and_finds_the_repeat(catalog):
    assert _subscription_insert_portable(resolved=resolved(catalog, "ann@example.com")) is None

    _variant_create(resolved=resolved(catalog, "ann@example.com"))
    new_id, created = _subscription_insert_portable(resolved=resolved(catalog, "ann@example.com"))
    repeat_id, repeated_created = _subscription_insert_portable(
        resolved=resolved(catalog, "ANN@example.com")
    )

    assert (created, repeated_created) == (True, False)
    assert repeat_id == new_id
