"""The HTTP layer: `ThreadingHTTPServer` with one handler class for the API, control and pages.

Every call must name a loopback host (`Host: 127.0.0.1:8100`, `localhost`, `[::1]`, any port, or
the name the server was bound to): another name is refused with 403, so a web page on another
site cannot reach the sandbox through DNS rebinding. Writes to `/_sandbox/` must be JSON
(`Content-Type: application/json`, else 415), which a cross-origin form or `text/plain` fetch
cannot send without a preflight the sandbox never grants.

For an `/api/` call, in this order: count it, apply an injected fault, check the body size, the
key and the revision, apply the rate limit, parse the body, check it with the request model of
Klaviyo's official SDK (sdk.py) and, when at hand, against Klaviyo's OpenAPI spec, then
dispatch. Refused and dropped calls are remembered (`Store.failed_call_add`) for the pages and
`/_sandbox/state`.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import sys
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from . import api, control, pages, sdk
from .account import Account
from .errors import ApiError, invalid

MAX_BODY_BYTES = 5 * 1024 * 1024
# Klaviyo's smaller payload caps, by path.
BODY_CAPS = {"/api/profile-import": 100 * 1024}
JSON_API = "application/vnd.api+json"
BODY_TYPES = (JSON_API, "application/json")
REVISION = re.compile(r"^\d{4}-\d{2}-\d{2}(\.[A-Za-z0-9_-]+)?$")
FAULT_CODES = {429: "throttled", 500: "error", 502: "error", 503: "service_unavailable"}
LOOPBACK_NAMES = frozenset(("127.0.0.1", "localhost", "::1"))
_HOST = re.compile(r"^(?:\[(?P<ipv6>[0-9A-Fa-f:.]+)\]|(?P<name>[^:\[\]]+))(?::\d{1,5})?$")
CONTROL_WRITES = frozenset(("POST", "PUT", "PATCH"))


def host_name(header: str) -> str | None:
    """The host name of a `Host` header (`[::1]:8100` -> `::1`), lower-cased; None if malformed."""
    match = _HOST.match(header.strip())
    if match is None:
        return None
    return (match.group("ipv6") or match.group("name")).lower().rstrip(".")


class SandboxServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # The benchmark opens many connections at once.
    request_queue_size = 128

    def __init__(
        self, address: tuple[str, int], account: Account, *, log_requests: bool = False
    ) -> None:
        self.account = account
        self.log_requests = log_requests
        bound = address[0].lower()
        wildcard = bound in ("", "0.0.0.0", "::")  # noqa: S104  (compared, not bound)
        self.host_names = LOOPBACK_NAMES if wildcard else LOOPBACK_NAMES | {bound}
        super().__init__(address, SandboxHandler)


class SandboxHandler(BaseHTTPRequestHandler):
    server: SandboxServer
    protocol_version = "HTTP/1.1"
    server_version = "KlaviyoSandbox/1.0"
    # Headers and body go out in two writes; with Nagle's algorithm the second waits for the
    # client's delayed ACK, about 40 ms on every answer.
    disable_nagle_algorithm = True

    def version_string(self) -> str:
        return self.server_version

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.log_requests:
            super().log_message(format, *args)

    # --- plumbing -------------------------------------------------------------------------------

    def _handle(self, method: str) -> None:
        parts = urlsplit(self.path)
        path = parts.path
        try:
            if host_name(self.headers.get("Host", "")) not in self.server.host_names:
                self._refuse_host(path)
            elif path.startswith("/api/"):
                self._api(method, path, dict(parse_qsl(parts.query, keep_blank_values=True)))
            elif path.startswith("/_sandbox/"):
                self._control(method, path)
            else:
                self._read_body()
                status, html = pages.render(self.server.account, method, path)
                self._send(status, html.encode(), "text/html; charset=utf-8")
        except _Dropped:
            return
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (e.g. its timeout ran out during a `slow` fault).
            self.close_connection = True
        except _Unreadable as error:
            self._send_error(invalid(str(error)))
        except Exception:
            traceback.print_exc(file=sys.stderr)
            self._send_error(ApiError(500, "error", "The sandbox failed; see its log."))

    def _refuse_host(self, path: str) -> None:
        """403 for a `Host` that is not a loopback name: nothing is read, counted or changed."""
        self.close_connection = True
        detail = "The sandbox answers only to loopback host names (127.0.0.1, localhost, [::1])."
        if path.startswith("/api/"):
            refusal = ApiError(403, "permission_denied", detail)
            self._send_json(api.Response(refusal.status, refusal.body()))
        else:
            self._send(403, json.dumps({"error": detail}).encode(), "application/json")

    def _control(self, method: str, path: str) -> None:
        raw = self._read_body()
        media_type = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if method in CONTROL_WRITES and media_type != "application/json":
            status, body = 415, {"error": "control writes take `Content-Type: application/json`"}
        elif raw is None:
            status, body = 413, {"error": "the request body is too large"}
        else:
            status, body = control.handle(self.server.account, method, path, raw)
        self._send(status, json.dumps(body, indent=1).encode(), "application/json")

    def _read_body(self, cap: int = MAX_BODY_BYTES) -> bytes | None:
        """The request body, or None when it is over `cap` (then the connection will close)."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self.close_connection = True
            raise _Unreadable("Chunked bodies are not supported; send Content-Length.")
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.close_connection = True
            raise _Unreadable("Invalid Content-Length.") from None
        if length > cap:
            self.close_connection = True
            return None
        return self.rfile.read(length) if length else b""

    def _send(
        self, status: int, payload: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        if status != 204:
            if payload:
                self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if payload and self.command != "HEAD":
            self.wfile.write(payload)

    def _send_json(self, response: api.Response) -> None:
        payload = b"" if response.body is None else json.dumps(response.body).encode()
        self._send(response.status, payload, JSON_API, response.headers)

    def _send_error(self, error: ApiError, extra: dict[str, str] | None = None) -> None:
        headers = {**(extra or {}), **error.headers}
        if self.path.startswith("/api/"):
            self.server.account.store.failed_call_add(
                status=error.status, route=self._route(), detail=error.detail
            )
        self._send_json(api.Response(error.status, error.body(), headers))

    def _route(self) -> str:
        return api.route_name(self.command, urlsplit(self.path).path)

    def _drop(self) -> None:
        """Close the connection without answering: the client sees a connection error."""
        self.server.account.store.failed_call_add(
            status=None, route=self._route(), detail="Injected fault: connection dropped."
        )
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)
        raise _Dropped

    # --- the API --------------------------------------------------------------------------------

    def _api(self, method: str, path: str, query: dict[str, str]) -> None:
        sandbox = self.server.account
        sandbox.store.count_call(api.route_name(method, path))
        raw = self._read_body(BODY_CAPS.get(path.rstrip("/"), MAX_BODY_BYTES))
        fault = sandbox.faults.take(method, path)
        if fault is not None:
            if fault.mode == "drop":
                self._drop()
            elif fault.mode == "slow":
                time.sleep(fault.delay)
            elif fault.mode == "throttle":
                sandbox.store.count_throttled()
                detail = (
                    f"Request was throttled. Expected available in {fault.retry_after} second(s)."
                )
                self._send_error(
                    ApiError(
                        429, "throttled", detail, headers={"Retry-After": str(fault.retry_after)}
                    )
                )
                return
            else:
                code = FAULT_CODES.get(fault.status, "error")
                detail = f"Injected fault: HTTP {fault.status}."
                self._send_error(ApiError(fault.status, code, detail))
                return
        if raw is None:
            self._send_error(ApiError(413, "payload_too_large", "The request body is too large."))
            return
        rate_headers: dict[str, str] = {}
        try:
            self._check_headers()
            decision = sandbox.limiter.check(method, path)
            if not decision.allowed:
                sandbox.store.count_throttled()
                seconds = decision.headers["Retry-After"]
                detail = f"Request was throttled. Expected available in {seconds} second(s)."
                raise ApiError(429, "throttled", detail, headers=decision.headers)
            rate_headers = decision.headers
            body = self._parse_body(method, raw)
            if body is not None:
                sdk.body_check(method, path, body)
            if body is not None and sandbox.validator is not None:
                sandbox.validator.validate(method, path, body)
            request = api.Request(method, path, query, body, self._base_url())
            response = api.dispatch(sandbox.store, request)
        except ApiError as error:
            self._send_error(error, rate_headers)
            return
        response.headers.update(rate_headers)
        self._send_json(response)

    def _check_headers(self) -> None:
        key = self.headers.get("Authorization", "")
        scheme, _, secret = key.partition(" ")
        if scheme != "Klaviyo-API-Key" or not self.server.account.api_key_accepts(
            key=secret.strip()
        ):
            raise ApiError(
                401, "not_authenticated", "Missing or invalid private key.",
                parameter="Authorization",
            )  # fmt: skip
        revision = self.headers.get("revision")
        if not revision:
            raise ApiError(
                400, "invalid", "The `revision` header is required.", parameter="revision"
            )
        if not REVISION.match(revision):
            raise ApiError(
                400, "invalid", f"Invalid revision `{revision}`: use YYYY-MM-DD.",
                parameter="revision",
            )  # fmt: skip

    def _parse_body(self, method: str, raw: bytes) -> Any:
        if method not in ("POST", "PATCH"):
            return None
        media_type = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if media_type not in BODY_TYPES:
            raise invalid(f"The body must be `Content-Type: {JSON_API}`, not `{media_type}`.")
        try:
            return json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise invalid(f"The body is not valid JSON: {error}.") from None

    def _base_url(self) -> str:
        host = self.headers.get("Host")
        if host:
            return f"http://{host}"
        name, port = str(self.server.server_address[0]), self.server.server_address[1]
        return f"http://[{name}]:{port}" if ":" in name else f"http://{name}:{port}"


class _Dropped(Exception):
    """The connection was dropped on purpose; nothing more to send."""


class _Unreadable(Exception):
    """A body the sandbox cannot read (chunked); the connection will close."""
