"""Request bodies checked with the request models of Klaviyo's official Python SDK (`klaviyo-api`).

The SDK is generated from Klaviyo's OpenAPI spec and ships a pydantic model per operation, so
every clone can check a body the way the spec would, without the spec. The models ignore keys
they do not know, so a body is also compared with what the model kept of it (KLAVIYO.md, "The
official Python SDK": `Model.from_dict(body)`, dumped with every known field by its JSON name,
which is `to_dict()` without dropping unset fields, and much faster on a 100-item job): a
key the model dropped is a misspelt or unknown attribute, and every value must come back equal.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import openapi_client.models as sdk_models
from pydantic import BaseModel, ValidationError

from .errors import invalid

# (method, path pattern) -> the SDK's request model, as the spec names each operation's body.
_JOB = r"^/api/catalog-(item|variant|category)-bulk-(create|update|delete)-jobs/?$"
_ONE = r"^/api/catalog-(item|variant|categor)(?:ies|s)/?$"
_ONE_ID = r"^/api/catalog-(item|variant|categor)(?:ies|s)/[^/]+$"
KINDS = {"item": "Item", "variant": "Variant", "categor": "Category", "category": "Category"}
OTHER_MODELS = {
    ("POST", "/api/back-in-stock-subscriptions"): "ServerBISSubscriptionCreateQuery",
    ("POST", "/api/profile-import"): "ProfileUpsertQuery",
    ("POST", "/api/profile-bulk-import-jobs"): "ProfileImportJobCreateQuery",
    ("POST", "/api/data-privacy-deletion-jobs"): "DataPrivacyCreateDeletionJobQuery",
}


def request_model_name(method: str, path: str) -> str | None:
    """The SDK model of this call's body (`CatalogVariantCreateJobCreateQuery`), or None."""
    if method == "POST" and (match := re.match(_JOB, path)):
        kind, operation = match.groups()
        return f"Catalog{KINDS[kind]}{operation.capitalize()}JobCreateQuery"
    if method == "POST" and (match := re.match(_ONE, path)):
        return f"Catalog{KINDS[match.group(1)]}CreateQuery"
    if method == "PATCH" and (match := re.match(_ONE_ID, path)):
        return f"Catalog{KINDS[match.group(1)]}UpdateQuery"
    return OTHER_MODELS.get((method, path.rstrip("/")))


def _pointer(location: tuple[int | str, ...], body: Any) -> str:
    """The JSON pointer into `body` of a pydantic error location, without the union branch
    names pydantic adds (`price/float`): it stops where the body has no such key."""
    tokens, value = [], body
    for part in location:
        found = (isinstance(value, dict) and part in value) or (
            isinstance(value, list) and isinstance(part, int) and 0 <= part < len(value)
        )
        if found:
            value = value[part]
        elif isinstance(value, dict):
            tokens.append(str(part))  # a required key that is missing
            break
        else:
            break
        tokens.append(str(part))
    return "".join(f"/{token.replace('~', '~0').replace('/', '~1')}" for token in tokens)


def _same(sent: Any, kept: Any) -> bool:
    return bool(sent == kept) and isinstance(sent, bool) == isinstance(kept, bool)


def _differences(sent: Any, kept: Any, pointer: str = "") -> Iterator[tuple[str, str]]:
    """(pointer, what) for every key the model did not keep or value it did not keep as sent."""
    if isinstance(sent, dict) and isinstance(kept, dict):
        for key, value in sent.items():
            where = f"{pointer}/{key}"
            if key not in kept:
                yield where, f"`{key}` is not an attribute Klaviyo's request model knows"
            elif not _same(value, kept[key]):
                yield from _differences(value, kept[key], where)
    elif isinstance(sent, list) and isinstance(kept, list) and len(sent) == len(kept):
        for index, (one, other) in enumerate(zip(sent, kept, strict=True)):
            if not _same(one, other):
                yield from _differences(one, other, f"{pointer}/{index}")
    elif not _same(sent, kept):
        yield pointer or "/", f"`{sent!r}` is read by Klaviyo's request model as `{kept!r}`"


def body_check(method: str, path: str, body: Any) -> None:
    """Raise a 400 `invalid` ApiError if the SDK's model of this call refuses or changes `body`.

    Calls with no request model (reads, deletes by URL) pass.
    """
    name = request_model_name(method, path)
    if name is None:
        return
    model: type[BaseModel] = getattr(sdk_models, name)
    try:
        kept = model.from_dict(body).model_dump(mode="json", by_alias=True)  # type: ignore[attr-defined]
    except ValidationError:
        try:
            model.model_validate(body)
        except ValidationError as error:
            first = error.errors()[0]
            where = _pointer(first["loc"], body) or "/"
            raise invalid(f"{name}: {first['msg']} at `{where}`.", where) from None
        raise invalid(f"{name}: the body does not validate.", "/") from None
    except (AttributeError, TypeError, KeyError, ValueError) as error:
        raise invalid(f"{name}: the body does not have the model's shape ({error}).", "/") from None
    for where, what in _differences(body, kept):
        raise invalid(f"{name}: {what} at `{where}`.", where)
