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

# key -> (monotonic time it expires, answer). Bounded: past ``_MAX_ENTRIES`` (a flood of distinct
# requests) the expired answers are dropped, then all.
_kept: dict[str, tuple[float, Any]] = {}
_MAX_ENTRIES = 10_000


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
    kept = _kept.get(key)
    if kept is not None and kept[0] > now:
        return kept[1]
    value = compute()
    if len(_kept) >= _MAX_ENTRIES:
        for old_key, (expires, _) in list(_kept.items()):
            if expires <= now:
                _kept.pop(old_key, None)
        if len(_kept) >= _MAX_ENTRIES:
            _kept.clear()
    _kept[key] = (now + seconds, value)
    return value


def recent_forget() -> None:
    """Forget everything kept (tests, and a process that has just changed what is kept)."""
    _kept.clear()
