"""The `Sandbox`: one running Klaviyo look-alike, for the CLI and for tests."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from .faults import Fault, FaultBoard
from .ratelimit import RateLimiter
from .schema import SpecValidator, spec_validator
from .server import SandboxServer
from .state import Store

RateLimits = bool | Mapping[str, tuple[int, int]]


class Sandbox:
    """A local Klaviyo API on `host:port` (port 0: a free one), served from a background thread.

    `rate_limits`: True for Klaviyo's limits, False for none, or a mapping from class
    (`catalog_write`, `catalog_job_read`, `catalog_read`, `back_in_stock`, `profile_import`,
    `data_privacy`) to (per second, per minute) replacing those classes' limits.
    `spec_path`: Klaviyo's OpenAPI spec, to check request bodies against; None: built-in checks
    only (see `schema.default_spec_path()` for where the CLI looks).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        rate_limits: RateLimits = True,
        job_seconds: float = 0.2,
        spec_path: str | Path | None = None,
        *,
        log_requests: bool = False,
    ) -> None:
        self.host = host
        self.port = port
        self.log_requests = log_requests
        self.store = Store(job_seconds=job_seconds)
        self.limiter = RateLimiter(self.store.lock, rate_limits)
        self.faults = FaultBoard(self.store.lock)
        self.validator: SpecValidator | None = (
            spec_validator(str(Path(spec_path).resolve())) if spec_path else None
        )
        self._server: SandboxServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> Sandbox:
        """Bind and serve in a background (daemon) thread; answers self."""
        if self._server is not None:
            return self
        self._server = SandboxServer((self.host, self.port), self)
        self.port = self._server.server_address[1]
        self.store.start_worker()
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name=f"klaviyo-sandbox-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self.store.stop_worker()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The base URL to give a Klaviyo client, e.g. `http://127.0.0.1:8100`."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

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

    def reset(self) -> None:
        """Clear everything: catalog, subscriptions, profiles, jobs, counters and faults."""
        self.store.reset()
        self.limiter.reset()
        self.faults.clear()

    def snapshot(self) -> dict[str, Any]:
        """What `GET /_sandbox/state` answers."""
        return self.store.snapshot()
