"""What a subscribe request asks on every call and rarely changes, kept a moment per process.

On a sale day the same few sizes and ship-to locations are asked for thousands of times a
second; asking the database each time was a third of the subscribe endpoint's cost
(bench/README.md, "Load"). ``recent`` keeps an answer in the process's own memory (a plain
dictionary: no round trip, no copy) for ``STOREFRONT_CACHE_SECONDS`` (2 s by default). A change
to the catalog or to the back-in-stock switch therefore reaches every web process within that
time; nothing a request accepts on a stale answer goes out wrong, because the push reads the
catalog again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings

T = TypeVar("T")


class ExpiringMemory:
    """A process's own bounded memory of values kept until a moment each.

    ``now`` and ``until`` are on whatever clock the caller uses (``time.monotonic()``,
    ``time.time()``), the same for all calls. Past ``max_entries`` (a flood of distinct keys) the
    expired entries are dropped, then all. Threads may race; the last write wins.
    """

    def __init__(self, *, max_entries: int = 10_000) -> None:
        self._kept: dict[str, tuple[float, Any]] = {}
        self._max_entries = max_entries

    def get(self, key: str, *, now: float, default: Any = None) -> Any:
        """The value kept for ``key`` if it is still good at ``now``, else ``default``."""
        kept = self._kept.get(key)
        return kept[1] if kept is not None and kept[0] > now else default

    def put(self, key: str, value: Any, *, now: float, until: float) -> None:
        """Keep ``value`` for ``key`` until ``until``."""
        if len(self._kept) >= self._max_entries:
            for old_key, (expires, _) in list(self._kept.items()):
                if expires <= now:
                    self._kept.pop(old_key, None)
            if len(self._kept) >= self._max_entries:
                self._kept.clear()
        self._kept[key] = (until, value)

    def clear(self) -> None:
        self._kept.clear()


_MISSING = object()
_recent = ExpiringMemory()


def recent(key: str, compute: Callable[[], T]) -> T:
    """``compute()``'s answer for ``key``, at most ``STOREFRONT_CACHE_SECONDS`` old.

    ``key``: a string naming everything the answer depends on. The answer is shared, not
    copied, so it must be immutable (a frozen dataclass, a bool). With the setting at 0,
    ``compute()`` every time. Threads of one process may compute the same answer at once; the
    last one is kept.
    """
    seconds = settings.STOREFRONT_CACHE_SECONDS
    if seconds <= 0:
        return compute()
    now = time.monotonic()
    value = _recent.get(key, now=now, default=_MISSING)
    if value is _MISSING:
        value = compute()
        _recent.put(key, value, now=now, until=now + seconds)
    return value


def recent_forget() -> None:
    """Forget everything kept (tests, and a process that has just changed what is kept)."""
    _recent.clear()
