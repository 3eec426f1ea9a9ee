"""The one HTTP client for Klaviyo: transport only (STYLE.md §7).

One ``requests`` session, the base URL, private key and revision from settings, JSON:API headers,
a (connect, read) timeout on every call, and typed exceptions that say whether to retry. It
knows no models; payloads come from ``klaviyo_sync.payloads``. The key never appears in a log
line or an exception's text.
"""

from __future__ import annotations

import http.client
import json
import logging
from collections.abc import Iterator
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import requests
from django.conf import settings

from klaviyo_sync.checks import api_url_problem
from klaviyo_sync.ratelimit import RateClass, RateLimiter, rate_limiter_from_settings
from operations.logs import klaviyo_answer_note
from operations.metrics import metric_count

logger = logging.getLogger(__name__)

JSON_API = "application/vnd.api+json"
# 503, 504 and Cloudflare's 524 are transient; 502 is not necessarily (KLAVIYO.md), but a
# bounded retry costs little and a permanent 502 still ends as a recorded failure.
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504, 524})
CATALOG_ID_PREFIX = "$custom:::$default:::"

CatalogKind = Literal["item", "variant", "category"]
BulkOperation = Literal["create", "update", "delete"]

_KIND_PATHS: dict[str, str] = {
    "item": "catalog-items",
    "variant": "catalog-variants",
    "category": "catalog-categories",
}


def catalog_id(external_id: str) -> str:
    """Klaviyo's id for one of our catalog objects: ``$custom:::$default:::<external_id>``."""
    return f"{CATALOG_ID_PREFIX}{external_id}"


def external_id_of(klaviyo_id: str) -> str:
    return klaviyo_id.removeprefix(CATALOG_ID_PREFIX)


def url_without_credentials(url: str) -> str:
    """The URL without any ``user:password@`` part: the one way a Klaviyo URL is shown, in
    errors, logs, ``klaviyo status`` and the admin."""
    try:
        parts = urlsplit(url)
        if parts.username is None and parts.password is None:
            return url
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
    except ValueError:  # a port that is not a number: show nothing of the authority
        return "<invalid URL>"
    return urlunsplit(parts._replace(netloc=netloc))


# Klaviyo's answers to a key that is wrong, revoked or missing a scope (KLAVIYO.md): a fact
# about the settings, not about the object or person the call was for.
KEY_REFUSED_STATUSES = frozenset({401, 403})


class KlaviyoError(Exception):
    """A call to Klaviyo that did not succeed. ``retryable`` says whether trying later may help."""

    retryable = False

    def __init__(self, message: str, *, status: int | None = None, detail: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail or message


class KlaviyoRetryableError(KlaviyoError):
    """5xx, timeouts, dropped connections and 429: the same call may succeed later."""

    retryable = True

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        detail: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status=status, detail=detail)
        self.retry_after = retry_after


class KlaviyoPermanentError(KlaviyoError):
    """401/403 (bad key or missing scope) and other 4xx: retrying will not help."""


class KlaviyoNotConfigured(KlaviyoPermanentError):
    """No ``KLAVIYO_API_KEY``, or a ``KLAVIYO_API_URL`` no request can be sent to: nothing is
    sent to Klaviyo, and what waits to be sent keeps waiting. ``setting`` names the culprit."""

    def __init__(self, message: str, *, setting: str) -> None:
        super().__init__(message)
        self.setting = setting


# Everything sending a request can raise besides an answer: requests' own family, http.client's,
# and the ValueError/UnicodeError that header encoding raises for a key with odd characters.
_TRANSPORT_ERRORS = (requests.RequestException, http.client.HTTPException, ValueError)
_RETRYABLE_TRANSPORT_ERRORS = (
    requests.Timeout,
    requests.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
    http.client.HTTPException,
)


def _transport_error(where: str, exc: BaseException) -> KlaviyoError:
    """A typed error for a request that got no answer, naming only the kind of failure.

    Its ``status`` is None, as Klaviyo said nothing; its ``detail`` is the kind alone (``timed
    out``, ``connection failed``...), for messages that name the URL themselves.
    """
    if isinstance(exc, requests.Timeout):
        kind, retryable = "timed out", True
    elif isinstance(exc, requests.ConnectionError):
        kind, retryable = "connection failed", True
    elif isinstance(exc, _RETRYABLE_TRANSPORT_ERRORS):
        kind, retryable = f"transfer failed ({type(exc).__name__})", True
    else:
        # InvalidHeader, InvalidURL, a key that cannot be encoded...: our settings.
        kind, retryable = (
            (
                f"could not be sent ({type(exc).__name__}); "
                "check KLAVIYO_API_KEY and KLAVIYO_API_URL (manage.py check)"
            ),
            False,
        )
    error_class = KlaviyoRetryableError if retryable else KlaviyoPermanentError
    return error_class(f"{where}: {kind}", detail=kind)


def _error_detail(response: requests.Response) -> str:
    """Klaviyo's own words from a JSON:API error body, or the start of the text."""
    try:
        errors = response.json().get("errors") or []
    except (ValueError, AttributeError):
        return response.text[:300]
    parts = []
    for error in errors[:5]:
        if isinstance(error, dict):
            text = error.get("detail") or error.get("title") or error.get("code") or ""
            pointer = (error.get("source") or {}).get("pointer")
            parts.append(f"{text} ({pointer})" if pointer else str(text))
    return "; ".join(parts) or response.text[:300]


def _retry_after_seconds(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return max(float(value), 0.0) if value is not None else None
    except ValueError:
        return None


class KlaviyoClient:
    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        revision: str,
        rate_limiter: RateLimiter | None = None,
        timeout: tuple[float, float],
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.revision = revision
        self.rate_limiter = rate_limiter
        self.timeout = timeout
        self.session = session or requests.Session()
        self.session.headers.update(
            {"Accept": JSON_API, "Content-Type": JSON_API, "revision": revision}
        )

    @classmethod
    def from_settings(cls) -> KlaviyoClient:
        return cls(
            base_url=settings.KLAVIYO_API_URL,
            api_key=settings.KLAVIYO_API_KEY,
            revision=settings.KLAVIYO_REVISION,
            rate_limiter=rate_limiter_from_settings(),
            timeout=(
                settings.KLAVIYO_CONNECT_TIMEOUT_SECONDS,
                settings.KLAVIYO_READ_TIMEOUT_SECONDS,
            ),
        )

    def __repr__(self) -> str:  # never show the key or the URL's password
        shown = url_without_credentials(self.base_url)
        return f"KlaviyoClient({shown!r}, key={'set' if self._api_key else 'missing'})"

    # --- transport ---------------------------------------------------------------------------

    def configuration_check(self) -> None:
        """Raises ``KlaviyoNotConfigured`` when no request can be sent with these settings: no
        key, or a base URL that ``klaviyo_sync.checks.api_url_problem`` refuses. The message
        names the setting and what is wrong, never its value."""
        if not self._api_key:
            raise KlaviyoNotConfigured(
                "KLAVIYO_API_KEY is not set; nothing is sent to Klaviyo.",
                setting="KLAVIYO_API_KEY",
            )
        problem = api_url_problem(self.base_url)
        if problem is not None:
            raise KlaviyoNotConfigured(
                f"KLAVIYO_API_URL is not a valid URL: {problem}; nothing is sent to Klaviyo "
                "until it is set to Klaviyo's (https://a.klaviyo.com) or a sandbox's.",
                setting="KLAVIYO_API_URL",
            )

    def request(
        self,
        method: str,
        path: str,
        *,
        rate_class: RateClass,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
    ) -> dict[str, Any] | None:
        """One call. Returns the parsed JSON body (None when empty) or raises a KlaviyoError:
        ``KlaviyoNotConfigured`` before anything is sent (``configuration_check``); one whose
        ``status`` is None when no answer came (``_transport_error``)."""
        self.configuration_check()
        if self.rate_limiter is not None:
            self.rate_limiter.acquire(rate_class)
        url = path if path.startswith("http") else f"{self.base_url}/api/{path.lstrip('/')}"
        where = f"{method} {url_without_credentials(url.split('?', 1)[0])}"
        data = json.dumps(body, separators=(",", ":")) if body is not None else None
        try:
            response = self.session.request(
                method,
                url,
                params=params,
                data=data,
                headers={"Authorization": f"Klaviyo-API-Key {self._api_key}"},
                timeout=self.timeout,
            )
        except _TRANSPORT_ERRORS as exc:
            metric_count("klaviyo_requests", rate_class=rate_class, status="no-answer")
            # The texts of these exceptions may hold the header's value (InvalidHeader: a key
            # with a newline) or the URL's password (InvalidURL, connection errors), and a
            # chained cause is printed with every logged traceback: only the kind goes on,
            # ``from None``.
            raise _transport_error(where, exc) from None
        metric_count("klaviyo_requests", rate_class=rate_class, status=response.status_code)
        klaviyo_answer_note(response)  # Klaviyo's error ids, for the log lines that follow
        if response.status_code < 400:
            if not response.content:
                return None
            try:
                parsed: dict[str, Any] = response.json()
            except ValueError as exc:
                raise KlaviyoRetryableError(
                    f"{where}: answer is not JSON", status=response.status_code
                ) from exc
            return parsed
        detail = _error_detail(response)
        message = f"{where}: {response.status_code} {detail}"
        if response.status_code in RETRYABLE_STATUSES:
            raise KlaviyoRetryableError(
                message,
                status=response.status_code,
                detail=detail,
                retry_after=_retry_after_seconds(response),
            )
        raise KlaviyoPermanentError(message, status=response.status_code, detail=detail)

    # --- catalog ---------------------------------------------------------------------------

    def bulk_job_create(
        self, *, kind: CatalogKind, operation: BulkOperation, body: dict[str, Any]
    ) -> dict[str, Any]:
        """Start a bulk job (at most 100 resources); returns the job resource (``data``)."""
        answer = self.request(
            "POST", f"catalog-{kind}-bulk-{operation}-jobs", rate_class="catalog_write", body=body
        )
        return (answer or {}).get("data") or {}

    def bulk_job_get(
        self, *, kind: CatalogKind, operation: BulkOperation, job_id: str
    ) -> dict[str, Any]:
        rate_class: RateClass = (
            "catalog_job_read" if kind != "category" and operation != "delete" else "catalog_read"
        )
        answer = self.request(
            "GET", f"catalog-{kind}-bulk-{operation}-jobs/{job_id}", rate_class=rate_class
        )
        return (answer or {}).get("data") or {}

    def catalog_create(self, *, kind: CatalogKind, body: dict[str, Any]) -> bool:
        """Create one object; False when it already exists (which counts as success)."""
        try:
            self.request("POST", _KIND_PATHS[kind], rate_class="catalog_write", body=body)
        except KlaviyoPermanentError as exc:
            if exc.status == 409:
                return False
            raise
        return True

    def catalog_external_ids(self, *, kind: CatalogKind) -> Iterator[list[str]]:
        """Every object of ``kind`` in Klaviyo's catalog, a page (at most 100 ids) at a time.

        ``GET /api/catalog-items`` (``-variants``, ``-categories``) with ``page[size]=100``,
        following ``links.next``: one call of the catalog-read class (350/s, 3,500/min) per 100
        objects (KLAVIYO.md). Yields external ids; objects not of our ``$custom`` catalog are
        left out.
        """
        url: str | None = f"{_KIND_PATHS[kind]}?page%5Bsize%5D=100"
        while url:
            answer = self.request("GET", url, rate_class="catalog_read") or {}
            ids = [str(resource.get("id") or "") for resource in answer.get("data") or []]
            yield [external_id_of(i) for i in ids if i.startswith(CATALOG_ID_PREFIX)]
            url = (answer.get("links") or {}).get("next")

    def catalog_update(self, *, kind: CatalogKind, external_id: str, body: dict[str, Any]) -> None:
        self.request(
            "PATCH",
            f"{_KIND_PATHS[kind]}/{catalog_id(external_id)}",
            rate_class="catalog_write",
            body=body,
        )

    # --- subscriptions and profiles ------------------------------------------------------

    def back_in_stock_subscription_create(self, *, body: dict[str, Any]) -> None:
        self.request("POST", "back-in-stock-subscriptions", rate_class="back_in_stock", body=body)

    def profile_import(self, *, body: dict[str, Any]) -> dict[str, Any]:
        return self.request("POST", "profile-import", rate_class="profile_import", body=body) or {}

    def profile_bulk_import_create(self, *, body: dict[str, Any]) -> dict[str, Any]:
        """Start a profile bulk import job (up to 10,000 profiles, 5 MB); returns the job."""
        answer = self.request(
            "POST", "profile-bulk-import-jobs", rate_class="profile_bulk_import", body=body
        )
        return (answer or {}).get("data") or {}

    def profile_bulk_import_get(self, *, job_id: str) -> dict[str, Any]:
        answer = self.request(
            "GET", f"profile-bulk-import-jobs/{job_id}", rate_class="profile_bulk_import"
        )
        return (answer or {}).get("data") or {}

    def profile_bulk_import_errors(self, *, job_id: str) -> list[dict[str, Any]]:
        """Every import error of a finished job (``import-error`` resources), all pages."""
        errors: list[dict[str, Any]] = []
        url: str | None = f"profile-bulk-import-jobs/{job_id}/import-errors"
        while url:
            answer = self.request("GET", url, rate_class="profile_bulk_import") or {}
            errors.extend(answer.get("data") or [])
            url = (answer.get("links") or {}).get("next")
        return errors

    def data_privacy_deletion_create(self, *, body: dict[str, Any]) -> None:
        self.request("POST", "data-privacy-deletion-jobs", rate_class="data_privacy", body=body)

    # --- account ---------------------------------------------------------------------------

    def accounts_get(self) -> dict[str, Any]:
        """``GET /api/accounts``: the cheapest authenticated read (scope ``accounts:read``)."""
        return self.request("GET", "accounts", rate_class="accounts") or {}
