"""Request bodies checked against Klaviyo's published OpenAPI spec, when it is at hand.

The spec (3 MB) is read once per process and path; each operation's validator is compiled on
first use and kept. The project does not ship the spec: it is looked for at run time.
"""

from __future__ import annotations

import functools
import json
import os
import re
import threading
from pathlib import Path
from typing import Any

from jsonschema.exceptions import best_match  # type: ignore[import-untyped]
from openapi_schema_validator import OAS30Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from .errors import invalid

SPEC_ENV = "KLAVIYO_OPENAPI_SPEC"
SPEC_FILE = "openapi-stable-2026-07-15.json"
SPEC_URI = "urn:klaviyo:openapi"
JSON_API = "application/vnd.api+json"
# <project root>/../shared/klaviyo/, next to the project as the workspace lays it out.
DEFAULT_SPEC = Path(__file__).resolve().parents[1].parent / "shared" / "klaviyo" / SPEC_FILE


def default_spec_path() -> Path | None:
    """`$KLAVIYO_OPENAPI_SPEC`, else the workspace's copy when it exists, else None."""
    configured = os.environ.get(SPEC_ENV)
    if configured:
        return Path(configured)
    return DEFAULT_SPEC if DEFAULT_SPEC.is_file() else None


def _pointer_token(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


class SpecValidator:
    """Validates `/api/` request bodies against their operation's `requestBody` schema."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self._registry: Registry[Any] = Registry().with_resource(
            SPEC_URI, Resource.from_contents(spec, default_specification=DRAFT4)
        )
        # (method, path pattern, pointer to the body schema), templates with fewer
        # parameters first so that a literal path wins over a templated one.
        self._operations: list[tuple[str, re.Pattern[str], str]] = []
        templates = sorted(spec.get("paths", {}).items(), key=lambda kv: kv[0].count("{"))
        for template, operations in templates:
            pattern = re.compile(
                "^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)) + "$"
            )
            for method, operation in operations.items():
                content = (
                    (operation.get("requestBody") or {}).get("content", {})
                    if isinstance(operation, dict)
                    else {}
                )
                if JSON_API in content:
                    tokens = [template, method, "requestBody", "content", JSON_API, "schema"]
                    pointer = "/paths/" + "/".join(_pointer_token(t) for t in tokens)
                    self._operations.append((method.upper(), pattern, pointer))
        self._validators: dict[str, OAS30Validator] = {}
        self._lock = threading.Lock()

    def _validator(self, method: str, path: str) -> OAS30Validator | None:
        for op_method, pattern, pointer in self._operations:
            if op_method == method and pattern.match(path):
                with self._lock:
                    validator = self._validators.get(pointer)
                    if validator is None:
                        schema = {"$ref": f"{SPEC_URI}#{pointer}"}
                        validator = OAS30Validator(schema, registry=self._registry)
                        self._validators[pointer] = validator
                return validator
        return None

    def validate(self, method: str, path: str, body: Any) -> None:
        """Raise a 400 `invalid` ApiError naming the first violation; pass unknown operations."""
        validator = self._validator(method, path)
        if validator is None:
            return
        error = best_match(validator.iter_errors(body))
        if error is not None:
            pointer = "".join(f"/{_pointer_token(str(part))}" for part in error.absolute_path)
            raise invalid(error.message, pointer or "/")


@functools.cache
def spec_validator(path: str) -> SpecValidator:
    """The validator for the spec at `path`, loaded once per process."""
    with Path(path).open(encoding="utf-8") as spec_file:
        return SpecValidator(json.load(spec_file))
