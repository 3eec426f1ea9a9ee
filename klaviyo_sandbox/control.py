"""The `/_sandbox/` control endpoints (no key; loopback only; writes take JSON).

Faults, rate limits, losing catalog objects, reset and state. Each answers (status, JSON body);
a bad body is a 400 `{"error": "..."}` that changes nothing.
"""

from __future__ import annotations

import json
from typing import Any

from .account import Account
from .faults import Fault

ENDPOINTS = {
    "GET /_sandbox/state": "everything the sandbox holds, as JSON",
    "POST /_sandbox/reset": "clear catalog, subscriptions, profiles, jobs, counters and faults",
    "GET /_sandbox/faults": "the active faults",
    "POST /_sandbox/faults": 'add a fault: {"mode": "error"|"throttle"|"slow"|"drop", ...}',
    "DELETE /_sandbox/faults": "clear all faults",
    "GET /_sandbox/rate-limits": "the rate limits in force, per class",
    "POST /_sandbox/rate-limits": '{"enabled": true|false} or {"limits": {"class": [s, min]}}',
    "POST /_sandbox/catalog/delete": (
        "lose catalog objects by external id, as a person deleting them in Klaviyo would: "
        '{"items": [...], "variants": [...], "categories": [...]} (an item takes its variants)'
    ),
    "DELETE /_sandbox/catalog": "empty the catalog (subscriptions and profiles stay)",
}
CATALOG_DELETE_KEYS = frozenset(("items", "variants", "categories"))


def handle(account: Account, method: str, path: str, raw: bytes) -> tuple[int, Any]:
    """Answer (status, JSON body) for one control call."""
    route = f"{method} {path.rstrip('/')}"
    try:
        if route == "GET /_sandbox/state":
            return 200, account.snapshot()
        if route == "POST /_sandbox/reset":
            account.reset()
            return 200, {"reset": True}
        if route == "GET /_sandbox/faults":
            return 200, {"faults": account.faults.active()}
        if route == "POST /_sandbox/faults":
            account.faults.add(Fault.from_options(_json_object(raw)))
            return 201, {"faults": account.faults.active()}
        if route == "DELETE /_sandbox/faults":
            account.clear_faults()
            return 200, {"faults": []}
        if route == "GET /_sandbox/rate-limits":
            return 200, {"limits": account.limiter.limits}
        if route == "POST /_sandbox/rate-limits":
            options = _json_object(raw)
            if "limits" in options:
                limits = {name: (int(s), int(m)) for name, (s, m) in options["limits"].items()}
                account.set_rate_limits(limits)
            else:
                account.set_rate_limits(bool(options.get("enabled", True)))
            return 200, {"limits": account.limiter.limits}
        if route == "POST /_sandbox/catalog/delete":
            return 200, account.catalog_delete(**_external_ids(_json_object(raw)))
        if route == "DELETE /_sandbox/catalog":
            return 200, {"deleted": account.catalog_clear()}
    except (ValueError, TypeError, AttributeError) as error:
        return 400, {"error": str(error)}
    return 404, {"error": f"no such control endpoint: {route}", "endpoints": ENDPOINTS}


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        options = json.loads(raw or b"{}")
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"the body is not valid JSON: {error}") from None
    if not isinstance(options, dict):
        raise ValueError("the body must be a JSON object")
    return options


def _external_ids(options: dict[str, Any]) -> dict[str, list[str]]:
    """`{"items": [...], ...}` checked: known keys only, each a list of non-empty strings."""
    unknown = set(options) - CATALOG_DELETE_KEYS
    if unknown:
        raise ValueError(f"unknown keys {sorted(unknown)}: give items, variants or categories")
    if not options:
        raise ValueError("give items, variants or categories (DELETE /_sandbox/catalog empties)")
    for key, ids in options.items():
        if not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids):
            raise ValueError(f"`{key}` must be a list of external ids (non-empty strings)")
    return {key: list(ids) for key, ids in options.items()}
