"""Klaviyo's error shape, and the exception the sandbox's handlers raise to answer with it."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

# The titles Klaviyo puts on its errors, by code.
TITLES = {
    "invalid": "Invalid input.",
    "not_authenticated": "Authentication credentials were not provided.",
    "permission_denied": "You do not have permission to perform this action.",
    "not_found": "Not found.",
    "duplicate": "Conflict.",
    "method_not_allowed": "Method not allowed.",
    "throttled": "Request was throttled.",
    "payload_too_large": "Payload too large.",
    "service_unavailable": "Service unavailable.",
    "error": "A server error occurred.",
}


def iso_now() -> str:
    """The current time as Klaviyo writes it: ISO 8601 in UTC."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def error_body(
    *, status: int, code: str, detail: str, pointer: str | None = None, parameter: str | None = None
) -> dict[str, Any]:
    """One Klaviyo error document: `{"errors": [{id, status, code, title, detail, ...}]}`."""
    source: dict[str, str] = {}
    if pointer is not None:
        source["pointer"] = pointer
    if parameter is not None:
        source["parameter"] = parameter
    return {
        "errors": [
            {
                "id": str(uuid.uuid4()),
                "status": status,
                "code": code,
                "title": TITLES.get(code, "Error."),
                "detail": detail,
                "source": source,
                "meta": {},
            }
        ]
    }


class ApiError(Exception):
    """Raised by a handler to answer with a Klaviyo error document."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        pointer: str | None = None,
        parameter: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.pointer = pointer
        self.parameter = parameter
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return error_body(
            status=self.status,
            code=self.code,
            detail=self.detail,
            pointer=self.pointer,
            parameter=self.parameter,
        )


def invalid(detail: str, pointer: str | None = None) -> ApiError:
    """A 400 `invalid` error, the answer to any malformed body."""
    return ApiError(400, "invalid", detail, pointer=pointer)
