"""The `/api/` endpoints: routing and one handler per operation.

Handlers take the store and a parsed request, and answer a Response or raise ApiError. The HTTP
layer (server.py) has already checked the key, the revision, rate limits and the body's schema.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlencode

from . import checks
from .catalog import KIND_OF_PLURAL, PLURALS, CatalogError, external_id_of
from .errors import ApiError
from .jobs import job_document
from .profiles import profile_document
from .state import Store

MAX_PAGE_SIZE = 100
_JOBS = re.compile(
    r"^/api/catalog-(item|variant|category)-bulk-(create|update|delete)-jobs(?:/([^/]+))?$"
)
_OBJECTS = re.compile(r"^/api/catalog-(items|variants|categories)(?:/([^/]+))?$")
_PROFILE_JOBS = re.compile(r"^/api/profile-bulk-import-jobs/([^/]+)(/import-errors)?$")
_ANY_IDS = re.compile(r"^\s*any\(\s*ids\s*,\s*\[(.*)\]\s*\)\s*$", re.DOTALL)
_QUOTED = re.compile(r"\"((?:[^\"\\]|\\.)*)\"|'([^']*)'")


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    base_url: str


@dataclass
class Response:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Store, Request], Response]


def route_name(method: str, path: str) -> str:
    """The call as the state's `calls` counts it: `GET /api/catalog-items/{id}`."""
    jobs = _JOBS.match(path)
    if jobs and jobs.group(3):
        return f"{method} {path[: jobs.start(3)]}{{job_id}}"
    objects = _OBJECTS.match(path)
    if objects and objects.group(2):
        return f"{method} {path[: objects.start(2)]}{{id}}"
    profile_jobs = _PROFILE_JOBS.match(path)
    if profile_jobs:
        return f"{method} /api/profile-bulk-import-jobs/{{job_id}}{profile_jobs.group(2) or ''}"
    return f"{method} {path}"


def dispatch(store: Store, request: Request) -> Response:
    """Find the handler for this call and run it."""
    method, path = request.method, request.path
    if match := _JOBS.match(path):
        kind, operation, job_id = match.groups()
        if job_id is None and method == "POST":
            return _job_create(store, request, kind, operation)
        if job_id is not None and method == "GET":
            return _job_get(store, request, kind, operation, unquote(job_id))
    elif match := _OBJECTS.match(path):
        kind, raw_id = KIND_OF_PLURAL[match.group(1)], match.group(2)
        if raw_id is None and method in ("GET", "POST"):
            return (_list if method == "GET" else _create)(store, request, kind)
        if raw_id is not None and method in ("GET", "PATCH", "DELETE"):
            return _one(store, request, kind, unquote(raw_id))
    elif (match := _PROFILE_JOBS.match(path)) and method == "GET":
        return _profile_job_get(store, request, unquote(match.group(1)), bool(match.group(2)))
    elif handler := OTHER_ROUTES.get((method, path.rstrip("/"))):
        return handler(store, request)
    raise ApiError(404, "not_found", f"The sandbox does not implement {method} {path}.")


# --- catalog -----------------------------------------------------------------------------------


def _job_create(store: Store, request: Request, kind: str, operation: str) -> Response:
    resources = checks.check_job(kind, operation, request.body)
    job = store.job_add(kind=kind, operation=operation, resources=resources)
    with store.lock:
        return Response(202, job_document(job, request.base_url))


def _job_get(store: Store, request: Request, kind: str, operation: str, job_id: str) -> Response:
    with store.lock:
        store.sync()
        job = store.jobs.jobs.get(job_id)
        if job is None or (job.kind, job.operation) != (kind, operation):
            raise ApiError(404, "not_found", f"A job with id `{job_id}` does not exist.")
        return Response(200, job_document(job, request.base_url))


def _document(store: Store, request: Request, kind: str, external_id: str) -> dict[str, Any]:
    resource = store.catalog.resource(kind, external_id, request.base_url)
    return {"data": resource, "links": dict(resource["links"])}


def _create(store: Store, request: Request, kind: str) -> Response:
    resource = checks.check_single(kind, "create", request.body, None)
    with store.lock:
        store.sync()
        try:
            external_id = store.catalog.create(kind, resource)
        except CatalogError as error:
            raise ApiError(error.status, error.code, error.detail) from None
        return Response(201, _document(store, request, kind, external_id))


def _one(store: Store, request: Request, kind: str, klaviyo_id: str) -> Response:
    """GET, PATCH or DELETE of `/api/catalog-<kind>s/{id}`."""
    resource = None
    if request.method == "PATCH":
        resource = checks.check_single(kind, "update", request.body, klaviyo_id)
    external_id = external_id_of(klaviyo_id) or klaviyo_id
    with store.lock:
        store.sync()
        try:
            if resource is not None:
                store.catalog.update(kind, external_id, resource)
            elif request.method == "DELETE":
                store.catalog.delete(kind, external_id)
                return Response(204)
            else:
                store.catalog.get(kind, external_id)
        except CatalogError as error:
            raise ApiError(error.status, error.code, error.detail) from None
        return Response(200, _document(store, request, kind, external_id))


def _wanted_ids(filter_text: str | None) -> list[str] | None:
    """The external ids of `any(ids,["$custom:::$default:::A",...])`, or None without a filter."""
    if filter_text is None:
        return None
    match = _ANY_IDS.match(filter_text)
    if match is None:
        raise ApiError(
            400, "invalid", "The sandbox supports only the filter `any(ids,[...])`.",
            parameter="filter",
        )  # fmt: skip
    wanted = [double or single for double, single in _QUOTED.findall(match.group(1))]
    return [external_id_of(klaviyo_id) or klaviyo_id for klaviyo_id in wanted]


def _page(query: dict[str, str]) -> tuple[int, int]:
    """(page size, offset) from `page[size]` and the opaque `page[cursor]`."""
    try:
        size = int(query.get("page[size]", MAX_PAGE_SIZE))
    except ValueError:
        size = 0
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise ApiError(
            400, "invalid", f"`page[size]` must be 1 to {MAX_PAGE_SIZE}.", parameter="page[size]"
        )
    cursor = query.get("page[cursor]")
    if not cursor:
        return size, 0
    try:
        offset = int(base64.urlsafe_b64decode(cursor.encode()).decode().removeprefix("offset:"))
    except (ValueError, binascii.Error):
        raise ApiError(
            400, "invalid", "Invalid `page[cursor]`.", parameter="page[cursor]"
        ) from None
    return size, max(offset, 0)


def _list(store: Store, request: Request, kind: str) -> Response:
    """`GET /api/catalog-<kind>s`, optionally filtered by ids, 100 a page, `links.next`."""
    wanted = _wanted_ids(request.query.get("filter"))
    size, offset = _page(request.query)
    with store.lock:
        store.sync()
        objects = store.catalog.objects[kind]
        if wanted is None:
            external_ids = list(objects)
        else:
            external_ids = [key for key in dict.fromkeys(wanted) if key in objects]
        page = external_ids[offset : offset + size]
        data = [store.catalog.resource(kind, key, request.base_url) for key in page]
    endpoint = f"{request.base_url}/api/catalog-{PLURALS[kind]}"
    params = {key: value for key, value in request.query.items() if key != "page[cursor]"}
    self_url = f"{endpoint}?{urlencode(request.query)}" if request.query else endpoint
    next_url = None
    if offset + size < len(external_ids):
        cursor = base64.urlsafe_b64encode(f"offset:{offset + size}".encode()).decode()
        next_url = f"{endpoint}?{urlencode({**params, 'page[cursor]': cursor})}"
    return Response(200, {"data": data, "links": {"self": self_url, "next": next_url}})


# --- back in stock, profiles ---------------------------------------------------------------------


def _back_in_stock(store: Store, request: Request) -> Response:
    email, phone, variant_id, channels = checks.check_back_in_stock(request.body)
    store.subscribe_back_in_stock(
        email=email, phone=phone, variant_id=variant_id, channels=channels
    )
    return Response(202)


def _profile_import(store: Store, request: Request) -> Response:
    profile_id, attributes = checks.check_profile_import(request.body)
    with store.lock:
        profile, created = store.profiles.upsert(profile_id=profile_id, attributes=attributes)
        return Response(201 if created else 200, profile_document(profile, request.base_url))


def _profile_job_create(store: Store, request: Request) -> Response:
    with store.lock:
        job = store.profile_jobs.add(request.body, store.profiles)
        return Response(202, store.profile_jobs.document(job, request.base_url))


def _profile_job_get(store: Store, request: Request, job_id: str, errors: bool) -> Response:
    with store.lock:
        job = store.profile_jobs.get(job_id)
        if not errors:
            return Response(200, store.profile_jobs.document(job, request.base_url))
        self_url = f"{request.base_url}{request.path}"
        return Response(200, {"data": list(job.errors), "links": {"self": self_url}})


def _data_privacy_deletion(store: Store, request: Request) -> Response:
    profile_id, email, phone = checks.check_deletion(request.body)
    with store.lock:
        store.profiles.delete(profile_id=profile_id, email=email, phone=phone)
    return Response(202)


def _accounts(store: Store, request: Request) -> Response:
    """The one account the key belongs to: what ``klaviyo check`` reads."""
    account = {
        "type": "account",
        "id": "SANDBOX",
        "attributes": {
            "contact_information": {"organization_name": "Klaviyo sandbox"},
            "locale": "en-US",
            "preferred_currency": "USD",
            "public_api_key": "SANDBOX",
        },
        "links": {"self": f"{request.base_url}/api/accounts/SANDBOX"},
    }
    return Response(200, {"data": [account], "links": {"self": f"{request.base_url}/api/accounts"}})


OTHER_ROUTES: dict[tuple[str, str], Handler] = {
    ("GET", "/api/accounts"): _accounts,
    ("POST", "/api/back-in-stock-subscriptions"): _back_in_stock,
    ("POST", "/api/profile-import"): _profile_import,
    ("POST", "/api/profile-bulk-import-jobs"): _profile_job_create,
    ("POST", "/api/data-privacy-deletion-jobs"): _data_privacy_deletion,
}
