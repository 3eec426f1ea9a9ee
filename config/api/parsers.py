"""A JSON parser that refuses oversized and deeply nested bodies before they cost anything."""

import codecs
import json
import re
from collections.abc import Mapping
from typing import Any, ClassVar

from django.conf import settings
from rest_framework import exceptions, status
from rest_framework.parsers import JSONParser

from config.api.fields import ascii_decimal


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "Request body is too large."
    default_code = "too_large"


class LimitedJSONParser(JSONParser):
    """JSON with a size limit per view (``max_body_bytes`` on the view, else the global one).

    DRF's own parser reads the whole stream whatever its length; this one checks
    ``Content-Length`` first and never reads more than the limit plus one byte. Nesting deeper than
    Python's recursion limit is a parse error, not a 500.
    """

    media_type = "application/json"
    default_max_body_bytes: ClassVar[int] = 16 * 1024

    @classmethod
    def body_limit(cls, view: Any) -> int:
        """The most bytes a body to ``view`` may have: its ``max_body_bytes`` (else
        ``default_max_body_bytes``), never more than Django's ``DATA_UPLOAD_MAX_MEMORY_SIZE``."""
        limit = getattr(view, "max_body_bytes", cls.default_max_body_bytes)
        return min(limit, settings.DATA_UPLOAD_MAX_MEMORY_SIZE)

    def parse(
        self,
        stream: Any,
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        parser_context = parser_context or {}
        limit = self.body_limit(parser_context.get("view"))
        request = parser_context.get("request")
        declared = request.META.get("CONTENT_LENGTH") if request is not None else None
        if declared:
            length = ascii_decimal(declared)
            if length is None:
                raise exceptions.ParseError("Invalid Content-Length header.")
            if length > limit:
                raise RequestTooLarge(f"Request body is larger than {limit} bytes.")
        charset = parser_context.get("encoding") or "utf-8"
        if not _is_utf8(charset):
            # RFC 8259 §8.1: JSON between systems is UTF-8. Other charsets, and "charsets" that
            # are codecs but not text encodings (rot13, base64, zlib), are refused here.
            raise exceptions.ParseError(f"JSON must be UTF-8, not charset {charset[:40]!r}.")
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise RequestTooLarge(f"Request body is larger than {limit} bytes.")
        return json_document(raw)


def json_document(raw: bytes) -> Any:
    """The JSON document in ``raw`` (UTF-8, RFC 8259 §8.1): any JSON value.

    Raises DRF's ``ParseError`` ("Malformed JSON: ...") for bytes that are not UTF-8, text that
    is not JSON, nesting deeper than Python's recursion limit, or a string holding a lone
    surrogate (``"\\ud800"``), which would fail at the database instead of here. The one rule for
    every JSON body the API reads (``LimitedJSONParser``, the subscribe views' plain lane).
    """
    try:
        data = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise exceptions.ParseError(f"Malformed JSON: {exc}") from None
    except RecursionError:
        raise exceptions.ParseError("Malformed JSON: nested too deeply.") from None
    if _SURROGATE_ESCAPE.search(raw) and not _surrogates_paired(data):
        raise exceptions.ParseError("Malformed JSON: unpaired surrogate in a string.")
    return data


def _is_utf8(charset: str) -> bool:
    try:
        return codecs.lookup(charset).name == "utf-8"
    except LookupError:
        return False


# Only a \u escape can put a lone surrogate into a string (the raw bytes must decode as UTF-8,
# which refuses one), so bodies without such an escape skip the walk. NUL characters are left to
# the fields, which name them on their own path (DRF's CharField refuses them).
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _surrogates_paired(data: Any) -> bool:
    """Whether every string in the document, keys included, is encodable as UTF-8 (a lone
    surrogate is not, and would fail at the database instead of here)."""
    pending = [data]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
        elif isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return False
    return True
