"""Reading parsed JSON values with their paths: each reader records a problem or returns a value.

Generic over the document; the catalog's own rules live in ``validation``.
"""

from collections.abc import Collection, Hashable
from decimal import Decimal
from functools import cache
from typing import TypeVar

from django.db.models import CharField, Model

from config.api.fields import text_storable
from shop.catalog_import.entries import CatalogProblem
from shop.models import COUNT_MAX

_V = TypeVar("_V", bound=Hashable)

# Limits of the columns values go to, so that a bad value is a problem when reading and not a
# DataError halfway through the import.
ID_MAX = 2**63 - 1  # BigIntegerField
PRICE_LIMIT = Decimal(10) ** 10  # DecimalField(max_digits=12, decimal_places=2)
CENT = Decimal("0.01")


@cache
def max_length(model: type[Model], name: str) -> int:
    """The max_length of a CharField, read from the model so the two cannot drift apart."""
    field = model._meta.get_field(name)
    assert isinstance(field, CharField) and field.max_length is not None
    return field.max_length


def join_path(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def json_type(value: object) -> str:
    """How a value is called in JSON, for messages like "must be a list, not an object"."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "true/false"
    if value is None:
        return "null"
    return "a number"


class JsonReader:
    """Collects problems while values are read out of a parsed JSON document.

    Readers return None when the value is invalid (after recording the problem); optional values
    that are absent or null read as their empty value (``""``, ``0``, ``[]``, ``{}``), except
    ``flag``, whose None also means absent.
    """

    def __init__(self) -> None:
        self.problems: list[CatalogProblem] = []

    def problem(self, path: str, message: str) -> None:
        self.problems.append(CatalogProblem(path=path, message=message))

    def fields(
        self, value: object, path: str, allowed: Collection[str]
    ) -> dict[str, object] | None:
        if not isinstance(value, dict):
            self.problem(path, f"must be an object, not {json_type(value)}")
            return None
        for key in value:
            if key not in allowed:
                self.problem(
                    join_path(path, str(key)), f"unknown key; expected one of {', '.join(allowed)}"
                )
        return value

    def items(self, obj: dict[str, object], key: str, path: str) -> list[object]:
        """An optional list; absent or null is empty."""
        value = obj.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.problem(join_path(path, key), f"must be a list, not {json_type(value)}")
            return []
        return value

    def mapping(self, obj: dict[str, object], key: str, path: str) -> dict[str, object] | None:
        """An optional object keyed by names; absent or null is empty."""
        value = obj.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.problem(join_path(path, key), f"must be an object, not {json_type(value)}")
            return None
        return value

    def text(
        self,
        obj: dict[str, object],
        key: str,
        path: str,
        *,
        limit: int | None,
        required: bool = False,
    ) -> str | None:
        """A string; an optional one that is absent or null reads as ""."""
        where = join_path(path, key)
        value = obj.get(key)
        if value is None:
            if required:
                self.problem(where, "is required")
                return None
            return ""
        if not isinstance(value, str):
            self.problem(where, f"must be a string, not {json_type(value)}")
            return None
        if not text_storable(value):
            self.problem(where, "must not contain NUL characters or unpaired surrogates")
            return None
        if required and not value.strip():
            self.problem(where, "must not be empty")
            return None
        if limit is not None and len(value) > limit:
            self.problem(where, f"must be at most {limit} characters")
            return None
        return value

    def identifier(self, obj: dict[str, object], key: str, path: str) -> int | None:
        where = join_path(path, key)
        value = obj.get(key)
        if value is None:
            self.problem(where, "is required")
            return None
        # bool is an int in Python but true is not an id.
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(where, f"must be an integer, not {json_type(value)}")
            return None
        if not 0 < value <= ID_MAX:
            self.problem(where, f"must be an integer between 1 and {ID_MAX}")
            return None
        return value

    def count(self, obj: dict[str, object], key: str, path: str, *, required: bool) -> int | None:
        where = join_path(path, key)
        value = obj.get(key)
        if value is None:
            if required:
                self.problem(where, "is required")
                return None
            return 0
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            self.problem(where, "must be an integer >= 0")
            return None
        if value > COUNT_MAX:
            self.problem(where, f"must be at most {COUNT_MAX}")
            return None
        return value

    def flag(self, obj: dict[str, object], key: str, path: str) -> bool | None:
        """true or false; None when absent (or invalid, with the problem recorded)."""
        value = obj.get(key)
        if value is None or isinstance(value, bool):
            return value
        self.problem(join_path(path, key), f"must be true or false, not {json_type(value)}")
        return None

    def amount(self, value: object, path: str) -> Decimal | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.problem(path, "must be a number >= 0")
            return None
        # str() first: Decimal(99.9) would carry the float's binary error into the comparison.
        amount = Decimal(str(value))
        if not amount.is_finite() or amount < 0:
            self.problem(path, "must be a number >= 0")
            return None
        if amount >= PRICE_LIMIT:
            self.problem(path, f"must be less than {PRICE_LIMIT}")
            return None
        if amount != amount.quantize(CENT):
            self.problem(path, "must have at most 2 decimal places")
            return None
        return amount.quantize(CENT)

    def unique(self, seen: dict[_V, str], value: _V | None, path: str, label: str) -> _V | None:
        """The value if it was not seen before (None stays None); a duplicate is reported."""
        if value is None:
            return None
        first = seen.setdefault(value, path)
        if first != path:
            self.problem(path, f"duplicate {label} {value} (also at {first})")
            return None
        return value

    def reference(
        self,
        name: str | None,
        path: str,
        label: str,
        *,
        in_file: Collection[str],
        in_db: Collection[str],
        is_key: bool = False,
    ) -> bool:
        """Whether a name is in the file or the database; reports it when it is in neither.

        A name used as a value is quoted in the message; one used as a key is already in the path
        (``prices.EUR``) and is not. An absent value (None or "") is no reference and passes; a
        key is never absent.
        """
        if name in in_file or name in in_db or (not name and not is_key):
            return True
        shown = name if is_key and name else f'"{name}"'
        self.problem(path, f"unknown {label} {shown}")
        return False
