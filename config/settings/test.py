"""The test suite: PostgreSQL and Redis on their default local ports unless told otherwise.

The defaults are set in the environment before the base settings read it, so that the test
database, cache and broker are built exactly as in production.
"""

import os

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/backinstock")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/14")
# Klaviyo is only ever the sandbox or mocked HTTP in tests; nothing listens on port 9.
os.environ.setdefault("KLAVIYO_API_URL", "http://127.0.0.1:9")
# Tests change the catalog and the switch between requests and expect the next request to see
# it: no per-process memory of them, except in the tests of that memory.
os.environ.setdefault("STOREFRONT_CACHE_SECONDS", "0")
# Tests read a figure right after the code under test records it, often in another process.
os.environ.setdefault("METRICS_FLUSH_SECONDS", "0")

from .base import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Tests run without collectstatic: whitenoise looks files up per request instead of listing a
# STATIC_ROOT that does not exist (and warning about it).
WHITENOISE_AUTOREFRESH = True
