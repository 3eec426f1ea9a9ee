"""The `Sandbox`: one running Klaviyo look-alike (an `Account` behind an HTTP server)."""

from __future__ import annotations

import threading
from pathlib import Path
from types import TracebackType

from .account import Account, RateLimits
from .server import SandboxServer


class Sandbox(Account):
    """A local Klaviyo API on `host:port` (port 0: a free one), served from a background thread.

    Options as `Account`'s. `Host` headers are accepted only for loopback names
    (`127.0.0.1`, `localhost`, `[::1]`) and the name it was bound to.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        rate_limits: RateLimits = True,
        job_seconds: float = 0.2,
        spec_path: str | Path | None = None,
        *,
        api_key: str,
        log_requests: bool = False,
    ) -> None:
        super().__init__(
            api_key=api_key, rate_limits=rate_limits, job_seconds=job_seconds, spec_path=spec_path
        )
        self.host = host
        self.port = port
        self.log_requests = log_requests
        self._server: SandboxServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> Sandbox:
        """Bind and serve in a background (daemon) thread; answers self."""
        if self._server is not None:
            return self
        self._server = SandboxServer((self.host, self.port), self, log_requests=self.log_requests)
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
