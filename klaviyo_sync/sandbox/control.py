"""The `/_sandbox/` control endpoints (no auth): faults, rate limits, reset and state."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .faults import Fault

if TYPE_CHECKING:
    from .app import Sandbox

ENDPOINTS = {
    "GET /_sandbox/state": "everything the sandbox holds, as JSON",
    "POST /_sandbox/reset": "clear catalog, subscriptions, profiles, jobs, counters and faults",
    "GET /_sandbox/faults": "the active faults",
    "POST /_sandbox/faults": 'add a fault: {"mode": "error"|"throttle"|"slow"|"drop", ...}',
    "DELETE /_sandbox/faults": "clear all faults",
    "GET /_sandbox/rate-limits": "the rate limits in force, per class",
    "POST /_sandbox/rate-limits": '{"enabled": true|false} or {"limits": {"class": [s, min]}}',
}


def handle(sandbox: Sandbox, method: str, path: str, raw: bytes | None) -> tuple[int, Any]:
    """Answer (status, JSON body) for one control call."""
    route = f"{method} {path.rstrip('/')}"
    try:
        if route == "GET /_sandbox/state":
            return 200, sandbox.snapshot()
        if route == "POST /_sandbox/reset":
            sandbox.reset()
            return 200, {"reset": True}
        if route == "GET /_sandbox/faults":
            return 200, {"faults": sandbox.faults.active()}
        if route == "POST /_sandbox/faults":
            sandbox.faults.add(Fault.from_options(_json_object(raw)))
            return 201, {"faults": sandbox.faults.active()}
        if route == "DELETE /_sandbox/faults":
            sandbox.clear_faults()
            return 200, {"faults": []}
        if route == "GET /_sandbox/rate-limits":
            return 200, {"limits": sandbox.limiter.limits}
        if route == "POST /_sandbox/rate-limits":
            options = _json_object(raw)
            if "limits" in options:
                limits = {name: (int(s), int(m)) for name, (s, m) in options["limits"].items()}
                sandbox.set_rate_limits(limits)
            else:
                sandbox.set_rate_limits(bool(options.get("enabled", True)))
            return 200, {"limits": sandbox.limiter.limits}
    except (ValueError, TypeError, AttributeError) as error:
        return 400, {"error": str(error)}
    return 404, {"error": f"no such control endpoint: {route}", "endpoints": ENDPOINTS}


def _json_object(raw: bytes | None) -> dict[str, Any]:
    try:
        options = json.loads(raw or b"{}")
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"the body is not valid JSON: {error}") from None
    if not isinstance(options, dict):
        raise ValueError("the body must be a JSON object")
    return options
