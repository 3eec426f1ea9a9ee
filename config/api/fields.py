"""Serializer fields and parsing helpers that accept exactly what the contract says."""

import argparse
import re
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from rest_framework import serializers

_ASCII_DECIMAL = re.compile(r"[0-9]+")


def ascii_decimal(text: str) -> int | None:
    """``text`` as a non-negative integer when it is ASCII digits only, else None.

    ``str.isdigit()`` and ``int()`` accept far more: superscripts (``"2³"`` passes ``isdigit``
    and then fails ``int``), other scripts' digits (``"١٢"``), underscores (``"1_000"``),
    surrounding whitespace and signs. Ids and numbers given as text are parsed here only.
    """
    return int(text) if _ASCII_DECIMAL.fullmatch(text) else None


def ascii_integer_argument(text: str) -> int:
    """An argparse ``type`` for figures given on the command line: ASCII digits, optionally
    after a minus, so that the range is checked where the other problems are and named with
    them (``set_stock ... -1`` is "physical: must be zero or more")."""
    value = ascii_decimal(text.removeprefix("-"))
    if value is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number in ASCII digits")
    return -value if text.startswith("-") else value


def text_storable(text: str) -> bool:
    """Whether ``text`` can be stored in a text column: no NUL (PostgreSQL refuses it) and no
    unpaired surrogate (JSON's ``\\ud800`` escape makes one; it is not encodable as UTF-8)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


_WEB_URL = URLValidator(schemes=["http", "https"])


def web_url_problem(url: str) -> str | None:
    """Why ``url`` is not a link a shopper's browser may follow, or None.

    Only absolute http(s) URLs with a real host (Django's ``URLValidator``): ``javascript:``,
    ``data:`` and relative URLs reach Klaviyo's emails and the storefront as links, so they are
    refused where they enter (catalog images, the product URL template; issue 9.5).
    """
    if not text_storable(url):
        return "must not contain NUL characters or unpaired surrogates"
    try:
        _WEB_URL(url)
    except ValidationError:
        return "must be an absolute http:// or https:// URL"
    return None


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer and nothing else: not true/false, not 12.0, not "12".

    DRF's IntegerField takes strings and floats and runs them through ``int()``; an integration
    sending text where the contract says a number has a bug we would rather tell it about.
    """

    default_error_messages = {"invalid": "must be an integer"}

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return data
