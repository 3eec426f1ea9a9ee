"""What a subscribe request asks on every call and rarely changes, kept a moment per process.

On a sale day the same few sizes and ship-to locations are asked for thousands of times a
second; asking the database each time was a third of the subscribe endpoint's cost
(bench/README.md, "Load"). ``recent`` keeps an answer in the process's own memory (the
``process`` cache, Django's local-memory backend: no round trip) for
``STOREFRONT_CACHE_SECONDS`` (2 s by default). A change to the catalog or to the back-in-stock
switch therefore reaches every web process within that time; nothing a request accepts on a
stale answer goes out wrong, because the push reads the catalog again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TypeVar

from django.conf import settings
from django.core.cache import caches

T = TypeVar("T")

_MISSING = object()


def recent(key: str, compute: Callable[[], T]) -> T:
    """``compute()``'s answer for ``key``, at most ``STOREFRONT_CACHE_SECONDS`` old.

    ``key``: a string naming everything the answer depends on. The answer must be picklable
    (the local-memory cache stores copies, so a caller cannot change the kept one). With the
    setting at 0, ``compute()`` every time.
    """
    seconds = settings.STOREFRONT_CACHE_SECONDS
    if seconds <= 0:
        return compute()
    cache = caches["process"]
    # Hashed: a request's text may hold spaces, control or lone surrogate characters, which
    # cache keys must not.
    hashed = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
    value = cache.get(hashed, _MISSING)
    if value is _MISSING:
        value = compute()
        cache.set(hashed, value, timeout=seconds)
    return value


def recent_forget() -> None:
    """Forget everything kept (tests, and a process that has just changed what is kept)."""
    caches["process"].clear()
