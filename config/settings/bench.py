"""The load bench (``bench/load.py``): production settings plus the ceiling app and its URL.

Only the bench uses this module. It keeps everything production does (DEBUG off, persistent
database connections, Redis cache and broker from the environment) and changes only:

- a fixed secret key, so the bench runs without one (production refuses to start otherwise);
- ``ALLOWED_HOSTS`` 127.0.0.1: all bench traffic is on loopback;
- no HTTPS redirect and no HSTS: the bench speaks plain HTTP on loopback;
- the ceiling app (``bench.ceiling``) and a URL conf that adds its view to the project's;
- throttles left on but with limits no bench reaches (every request comes from 127.0.0.1), so
  the load measures the endpoint and its Redis round trips rather than 429 answers.

``DATABASE_URL``, ``REDIS_URL`` and ``CELERY_BROKER_URL`` come from the environment as in
production; ``bench/load.py`` points them at a throwaway database and two Redis databases.
"""

import os

# production.py refuses a missing or dev-only key at import time, so set the bench's first.
os.environ["DJANGO_SECRET_KEY"] = "bench-only-fixed-secret-key-not-for-production-0123456789"  # noqa: S105

os.environ.setdefault("DJANGO_SECURE_SSL_REDIRECT", "false")
os.environ.setdefault("DJANGO_SECURE_HSTS_SECONDS", "0")

from .production import *  # noqa: F403
from .production import INSTALLED_APPS, env

DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1"]
INSTALLED_APPS = [*INSTALLED_APPS, "bench.ceiling"]
ROOT_URLCONF = "bench.ceiling.urls"

SUBSCRIBE_RATE_PER_CLIENT = env.str("SUBSCRIBE_RATE_PER_CLIENT", default="1000000000/minute")
SUBSCRIBE_RATE_PER_EMAIL = env.str("SUBSCRIBE_RATE_PER_EMAIL", default="1000000000/minute")
