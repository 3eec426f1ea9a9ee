"""`Account`: everything one sandboxed Klaviyo account is, without the HTTP server.

The data (catalog, jobs, subscriptions, profiles), the accepted API key, the rate limits, the
injected faults and the spec validator, with the control operations the `/_sandbox/` endpoints
and tests use. The server, the control endpoints and the pages read it; `app.Sandbox` adds a
server around it. Nothing here imports the HTTP layer, so there is no cycle.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .faults import Fault, FaultBoard
from .ratelimit import RateLimiter
from .schema import SpecValidator, spec_validator
from .state import Store

RateLimits = bool | Mapping[str, tuple[int, int]]


class Account:
    """One Klaviyo account as the sandbox keeps it.

    `api_key`: the one private key accepted (`Authorization: Klaviyo-API-Key <api_key>`).
    `rate_limits`: True for Klaviyo's limits, False for none, or a mapping from class
    (`catalog_write`, `catalog_job_read`, `catalog_read`, `back_in_stock`, `profile_import`,
    `data_privacy`) to (per second, per minute) replacing those classes' limits.
    `spec_path`: Klaviyo's OpenAPI spec, to check request bodies against besides the SDK's
    request models; None: no spec check (see `schema.default_spec_path()`).
    """

    def __init__(
        self,
        *,
        api_key: str,
        rate_limits: RateLimits = True,
        job_seconds: float = 0.2,
        spec_path: str | Path | None = None,
    ) -> None:
        if not api_key:
            raise ValueError("the sandbox needs the API key it accepts")
        self._api_key = api_key
        self.store = Store(job_seconds=job_seconds)
        self.limiter = RateLimiter(self.store.lock, rate_limits)
        self.faults = FaultBoard(self.store.lock)
        self.validator: SpecValidator | None = (
            spec_validator(str(Path(spec_path).resolve())) if spec_path else None
        )

    def __repr__(self) -> str:  # never the key
        return f"<{type(self).__name__}>"

    def api_key_accepts(self, *, key: str) -> bool:
        """Whether `key` is the configured private key (compared in constant time)."""
        return hmac.compare_digest(key.encode(), self._api_key.encode())

    # --- control (the same as the `/_sandbox/` endpoints) ----------------------------------------

    def add_fault(self, mode: str, **options: Any) -> Fault:
        """Inject a fault: `mode` error|throttle|slow|drop; options status, retry_after, delay,
        count, seconds, path_prefix, method (see faults.py)."""
        fault = Fault.from_options({"mode": mode, **options})
        self.faults.add(fault)
        return fault

    def clear_faults(self) -> None:
        self.faults.clear()

    def set_rate_limits(self, rate_limits: RateLimits) -> None:
        """Change the rate limits at run time (and start counting afresh)."""
        self.limiter.configure(rate_limits)

    def catalog_delete(
        self,
        *,
        items: Iterable[str] = (),
        variants: Iterable[str] = (),
        categories: Iterable[str] = (),
    ) -> dict[str, dict[str, list[str]]]:
        """Delete catalog objects by external id, as a person would in Klaviyo's interface.

        An item takes its variants along; a category leaves its items. Answers
        `{"deleted": {"items": [...], "variants": [...], "categories": [...]}, "missing": {...}}`:
        the variants an item took along are listed as deleted; ids not held are `missing`.
        """
        return self.store.catalog_delete(
            wanted={"item": list(items), "variant": list(variants), "category": list(categories)}
        )

    def catalog_clear(self) -> dict[str, int]:
        """Empty the catalog (items, variants, categories); answers how many of each went.

        Subscriptions, profiles, jobs and counters stay, as when a person deletes the objects.
        """
        return self.store.catalog_clear()

    def reset(self) -> None:
        """Clear everything: catalog, subscriptions, profiles, jobs, counters and faults."""
        self.store.reset()
        self.limiter.reset()
        self.faults.clear()

    def snapshot(self) -> dict[str, Any]:
        """What `GET /_sandbox/state` answers."""
        return {**self.store.snapshot(), "faults": self.faults.active()}
