"""Injected faults, switched on and off at run time for fault tests.

A fault applies to calls whose path starts with `path_prefix`, for `count` calls or `seconds`
seconds (whichever ends first; neither: until cleared). Several may be active; the first
matching one wins.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

MODES = ("error", "throttle", "slow", "drop")
OPTIONS = frozenset(
    ("mode", "status", "retry_after", "delay", "count", "seconds", "path_prefix", "method")
)


@dataclass
class Fault:
    mode: str
    status: int = 503
    retry_after: int = 1
    delay: float = 1.0
    count: int | None = None
    seconds: float | None = None
    path_prefix: str = "/api/"
    method: str | None = None
    until: float | None = None

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Fault:
        """Build a fault from the JSON a test posts; raise ValueError on nonsense."""
        unknown = set(options) - OPTIONS
        if unknown:
            raise ValueError(f"unknown fault options: {sorted(unknown)}")
        mode = options.get("mode")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}")
        fault = cls(
            mode=str(mode),
            status=int(options.get("status", 503)),
            retry_after=int(options.get("retry_after", 1)),
            delay=float(options.get("delay", 1.0)),
            count=None if options.get("count") is None else int(options["count"]),
            seconds=None if options.get("seconds") is None else float(options["seconds"]),
            path_prefix=str(options.get("path_prefix", "/api/")),
            method=None if options.get("method") is None else str(options["method"]).upper(),
        )
        if not 400 <= fault.status <= 599:
            raise ValueError("status must be between 400 and 599")
        if fault.retry_after < 0 or fault.delay < 0:
            raise ValueError("retry_after and delay must not be negative")
        if fault.count is not None and fault.count < 1:
            raise ValueError("count must be at least 1")
        if fault.seconds is not None:
            fault.until = time.monotonic() + fault.seconds
        return fault

    def describe(self) -> dict[str, Any]:
        described = asdict(self)
        described.pop("until")
        if self.until is not None:
            described["seconds_left"] = round(max(self.until - time.monotonic(), 0.0), 3)
        return described


class FaultBoard:
    def __init__(self, lock: threading.RLock) -> None:
        self._lock = lock
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def active(self) -> list[dict[str, Any]]:
        with self._lock:
            self._expire()
            return [fault.describe() for fault in self._faults]

    def take(self, method: str, path: str) -> Fault | None:
        """The first active fault matching this call, counting the call against it."""
        with self._lock:
            self._expire()
            for fault in self._faults:
                if not path.startswith(fault.path_prefix):
                    continue
                if fault.method is not None and fault.method != method:
                    continue
                if fault.count is not None:
                    fault.count -= 1
                    if fault.count == 0:
                        self._faults.remove(fault)
                return fault
            return None

    def _expire(self) -> None:
        now = time.monotonic()
        self._faults = [f for f in self._faults if f.until is None or f.until > now]
