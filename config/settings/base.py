"""Settings shared by every environment.

All configuration is read here, once, from the environment (CONTRACT.md §2). A ``.env`` file is
read only when ``DJANGO_READ_DOT_ENV_FILE`` is true. The defaults make ``make demo`` work on a bare
machine: SQLite, an embedded file-system broker and a local-memory cache.
"""

from pathlib import Path

import environ
from corsheaders.defaults import default_headers as corsheaders_default_headers
from django_guid.integrations import CeleryIntegration

from operations.logs import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
if env.bool("DJANGO_READ_DOT_ENV_FILE", default=False):
    env.read_env(str(BASE_DIR / ".env"))

# --- Django core -------------------------------------------------------------------------------

SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="dev-only-insecure-secret-key-change-me")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "django_guid",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "shop",
    "backinstock",
    "klaviyo_sync",
    "operations",
]

MIDDLEWARE = [
    "operations.middleware.request_metrics_middleware",  # operations: first, to time it all
    "operations.middleware.probe_middleware",  # operations: /healthz, /readyz for any Host
    # Before the rest, so that every answer (CORS preflights and errors included) carries the id.
    "config.correlation.correlation_id_sanitize_middleware",
    "django_guid.middleware.guid_middleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",  # operations: static files from the web process
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, so every middleware above handles its 411 (CORS, Content-Length, security headers);
    # none of them reads a body, and what does (CSRF's process_view, the views) runs after it.
    "config.api.middleware.body_length_required_middleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "config" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # The demo's web server and worker share one SQLite file: wait for locks, don't fail.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
# A kept connection is checked before a request reuses it, so the first request after a
# PostgreSQL restart gets a fresh connection instead of a 500.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("DJANGO_STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))

# The stock Integration API accepts up to 10,000 entries (about 1 MB of JSON); other endpoints set
# their own, much smaller limit in their parser (see ``config.api.parsers``).
DATA_UPLOAD_MAX_MEMORY_SIZE = 4 * 1024 * 1024

# --- Cache (throttling, and later the outbound rate limiter) -----------------------------------

REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            # Short timeouts: a Redis outage must cost a request milliseconds, not seconds
            # (throttling fails open, see backinstock.throttling).
            "OPTIONS": {"socket_connect_timeout": 0.25, "socket_timeout": 0.25},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# Each process's own memory of what every subscribe request asks and that rarely changes: the
# catalog's answer for an item and ship-to location, the store's languages, and the back-in-stock
# switch (``config.process_cache``). A change takes effect within STOREFRONT_CACHE_SECONDS; 0 asks
# the database on every request.
STOREFRONT_CACHE_SECONDS = env.float("STOREFRONT_CACHE_SECONDS", default=2.0)

# --- Celery --------------------------------------------------------------------------------------

# With a host named, kombu does not warn "No hostname was supplied" on every command.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://localhost/")
if CELERY_BROKER_URL.startswith("filesystem://"):
    # The embedded broker: messages are files in var/broker, so the demo needs no server.
    _broker_dir = VAR_DIR / "broker"
    for _folder in ("out", "processed", "control"):
        (_broker_dir / _folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "out"),
        "data_folder_out": str(_broker_dir / "out"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
        # Read the folder ten times a second: a poll takes one message, and the scheduler's
        # ticks (about three a second) must not pile up until they expire.
        "polling_interval": 0.1,
    }
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = TIME_ZONE
# A web request that queues a task must not hang when the broker is down: fail fast, and let
# the periodic sweep of the outbox queue the work later.
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0.2}
if CELERY_BROKER_URL.startswith("redis"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": 2, "visibility_timeout": 3600}
# The outbox's ticks: each finds due work in the database and returns at once when there is none;
# a tick that waited in the queue longer than a few seconds is dropped (the next one comes).
KLAVIYO_DISPATCH_SECONDS = env.float("KLAVIYO_DISPATCH_SECONDS", default=1.0)
# Noted stock changes are pushed once none has come for the quiet time (an Integration API call
# commits all its notes at once, so waiting longer gathers nothing more), or once the oldest is
# the coalescing window old (a steady stream of changes still goes out at least that often), in
# the same variant bulk jobs.
KLAVIYO_STOCK_QUIET_SECONDS = env.float("KLAVIYO_STOCK_QUIET_SECONDS", default=0.5)
KLAVIYO_STOCK_COALESCE_SECONDS = env.float("KLAVIYO_STOCK_COALESCE_SECONDS", default=2.0)
# The stock push's tick comes as often as the quiet time, so that changes once due wait at most
# one quiet time more: 0.5 s rather than the dispatcher's 1 s takes half a second off the worst
# case, and a tick that finds nothing due is one aggregate over a table that is empty between
# pushes. Never less often than the dispatcher, never more than four times a second.
KLAVIYO_STOCK_TICK_SECONDS = min(KLAVIYO_DISPATCH_SECONDS, max(KLAVIYO_STOCK_QUIET_SECONDS, 0.25))
# The demo's file-system broker delivers many of them late and out of order: no expiry there (a
# tick that finds nothing due costs milliseconds).
_TICK = {} if CELERY_BROKER_URL.startswith("filesystem") else {"expires": 5}
CELERY_BEAT_SCHEDULE = {
    "dispatch-subscriptions": {
        "task": "klaviyo_sync.tasks.dispatch_subscriptions",
        "schedule": KLAVIYO_DISPATCH_SECONDS,
        "options": _TICK,
    },
    "sweep-pending-subscriptions": {
        "task": "klaviyo_sync.tasks.sweep_pending_subscriptions",
        "schedule": env.float("KLAVIYO_SWEEP_SECONDS", default=15.0),
    },
    "sweep-profile-deletions": {
        "task": "klaviyo_sync.tasks.sweep_profile_deletions",
        "schedule": env.float("KLAVIYO_SWEEP_SECONDS", default=60.0),
    },
    "catalog-sync-incremental": {
        "task": "klaviyo_sync.tasks.sync_catalog",
        "schedule": 5.0,
        "kwargs": {"full": False},
        "options": _TICK,
    },
    "stock-push-pending": {
        "task": "klaviyo_sync.tasks.push_stock_changes",
        "schedule": KLAVIYO_STOCK_TICK_SECONDS,
        "options": _TICK,
    },
    "stock-reconciliation": {
        "task": "klaviyo_sync.tasks.push_stock_changes",
        "schedule": 10 * 60.0,
        "kwargs": {"reconcile": True},
    },
    "catalog-sync-reconciliation": {
        "task": "klaviyo_sync.tasks.sync_catalog",
        "schedule": env.float("KLAVIYO_CATALOG_RECONCILE_SECONDS", default=6 * 3600.0),
        "kwargs": {"full": True},
    },
}

# --- REST framework, OpenAPI, CORS ---------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_PARSER_CLASSES": ["config.api.parsers.LimitedJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "config.api.exceptions.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
    # Number of trusted reverse proxies in front of the web process; the client address for
    # throttling is read from X-Forwarded-For only past that many hops.
    "NUM_PROXIES": env.int("DJANGO_NUM_PROXIES", default=0),
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Back in stock API",
    "DESCRIPTION": (
        "Back-in-stock subscriptions for a Centra-like shop, delivered through Klaviyo. "
        'Errors always have the shape `{"errors": {"<field>": "<message>"}}`, on every path '
        "under `/api/`. Every answer carries `X-Correlation-ID`: the one the client sent, or a "
        "new one; quote it when reporting a problem. Centra's Storefront API (GraphQL) is at "
        "`POST /api/storefront-api/graphql`, its schema at "
        "[/api/storefront-api/schema.graphql](/api/storefront-api/schema.graphql)."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI and ReDoc from the project's own static files: the docs load nothing from
    # another host (CONTRACT §9).
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_GENERATE_CHOICE_DESCRIPTION": False,
    # What Swagger UI's Authorize button offers; each operation names the one it needs.
    "APPEND_COMPONENTS": {
        "securitySchemes": {
            "API-Authorization": {
                "type": "apiKey",
                "in": "header",
                "name": "API-Authorization",
                "description": "Shop API: the store's `SHOP_API_KEY`.",
            },
            "IntegrationBearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "Integration API: `Authorization: Bearer <INTEGRATION_API_TOKEN>`.",
            },
        }
    },
}

# --- CORS: browser storefronts on the public APIs (CONTRACT §3) ---------------------------------

CORS_ALLOWED_ORIGINS = env.list("CHECKOUT_API_ALLOWED_ORIGINS", default=[])
CORS_URLS_REGEX = r"^/api/(checkout-api|storefront-api)/.*$"
CORS_ALLOW_METHODS = ["OPTIONS", "POST"]
# Centra's storefront SDKs send the session in ``api-token`` and often an ``X-Correlation-ID``.
CORS_ALLOW_HEADERS = (*corsheaders_default_headers, "api-token", "x-correlation-id")
CORS_EXPOSE_HEADERS = ["X-Correlation-ID", "Retry-After"]

# --- Correlation ids (django-guid) ----------------------------------------------------------------
# X-Correlation-ID is echoed on every answer, generated when absent, added to every log line by
# the ``correlation_id`` filter, and sent with every task queued during the request, so one
# subscription can be followed from the storefront into the worker (CONTRACT §3). Not validated
# as a UUID: storefront clients send ids of their own making, and they are echoed as given.

DJANGO_GUID = {
    "GUID_HEADER_NAME": "X-Correlation-ID",
    "VALIDATE_GUID": False,
    "RETURN_HEADER": True,
    # CORS_EXPOSE_HEADERS exposes it, to the allowed origins only.
    "EXPOSE_HEADER": False,
    "INTEGRATIONS": [CeleryIntegration(use_django_logging=True, log_parent=False)],
    # Probes and scrapes are not requests anyone follows.
    "IGNORE_URLS": ["healthz", "readyz", "metrics"],
}

# --- This project ---------------------------------------------------------------------------------

SHOP_API_KEY = env.str("SHOP_API_KEY", default="")
INTEGRATION_API_TOKEN = env.str("INTEGRATION_API_TOKEN", default="")

# Stripped: a key read from a secret file often ends in a newline. Whitespace or control
# characters inside it are a ``manage.py check`` error (klaviyo_sync.checks).
KLAVIYO_API_KEY = env.str("KLAVIYO_API_KEY", default="").strip()
KLAVIYO_API_URL = env.str("KLAVIYO_API_URL", default="https://a.klaviyo.com")
KLAVIYO_REVISION = env.str("KLAVIYO_REVISION", default="2026-07-15")
# Every call to Klaviyo has both: no call can hang a worker.
KLAVIYO_CONNECT_TIMEOUT_SECONDS = env.float("KLAVIYO_CONNECT_TIMEOUT_SECONDS", default=3.05)
KLAVIYO_READ_TIMEOUT_SECONDS = env.float("KLAVIYO_READ_TIMEOUT_SECONDS", default=20.0)
# Changes to display items within this many seconds go to Klaviyo together.
KLAVIYO_CATALOG_COALESCE_SECONDS = env.float("KLAVIYO_CATALOG_COALESCE_SECONDS", default=5.0)
# A worker pushing a subscription holds it this long, renewed every third of it while the push
# lives; if the worker dies, the subscription is free again once this has run out.
KLAVIYO_PUSH_LEASE_SECONDS = env.float("KLAVIYO_PUSH_LEASE_SECONDS", default=30.0)
# The sweep re-queues subscriptions still pending this long after their last change.
KLAVIYO_SWEEP_AFTER_SECONDS = env.float("KLAVIYO_SWEEP_AFTER_SECONDS", default=30.0)

SUBSCRIBE_RATE_PER_CLIENT = env.str("SUBSCRIBE_RATE_PER_CLIENT", default="30/min")
SUBSCRIBE_RATE_PER_EMAIL = env.str("SUBSCRIBE_RATE_PER_EMAIL", default="10/hour")

# Back in stock is gated by the Klaviyo integration's switch (CONTRACT §3, §6). backinstock must
# not import klaviyo_sync (dependencies point one way), so it asks through this dotted path.
BACK_IN_STOCK_ENABLED_CHECK = "klaviyo_sync.selectors.back_in_stock_enabled"

# The key of the erasure audit's HMAC of an address. Defaults to the secret key; set it on its
# own to keep erasures findable by address across a rotation of DJANGO_SECRET_KEY.
ERASURE_AUDIT_SECRET = env.str("ERASURE_AUDIT_SECRET", default="") or SECRET_KEY

# --- Operations: health, heartbeats (see operations/, README "Running in production") ------------

# Workers and schedulers record a heartbeat this often; `manage.py health worker|scheduler`
# fails when the youngest is older than the maximum age.
OPERATIONS_HEARTBEAT_SECONDS = env.float("OPERATIONS_HEARTBEAT_SECONDS", default=15.0)
OPERATIONS_HEARTBEAT_MAX_AGE_SECONDS = env.float(
    "OPERATIONS_HEARTBEAT_MAX_AGE_SECONDS", default=60.0
)
CELERY_BEAT_SCHEDULER = "operations.heartbeats:HeartbeatScheduler"
# Beat ticks (and so beats) at least this often, whatever its schedule.
CELERY_BEAT_MAX_LOOP_INTERVAL = OPERATIONS_HEARTBEAT_SECONDS
# Probes and scrapers speak plain HTTP to the process itself: no redirect to HTTPS for them.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
# Bearer token of /metrics; empty closes it (403).
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
# Each process sums its figures and sends them to Redis this often (0: every write at once).
METRICS_FLUSH_SECONDS = env.float("METRICS_FLUSH_SECONDS", default=1.0)

# --- Operations: logs, correlation ids, Sentry ------------------------------------------------

# `json`: one JSON object per line (production's default); `console`: readable lines.
LOG_FORMAT = env.str("LOG_FORMAT", default="console")
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = logging_config(log_format=LOG_FORMAT, level=LOG_LEVEL)

SENTRY_DSN = env.str("SENTRY_DSN", default="")
if SENTRY_DSN:
    from operations.sentry import sentry_init

    sentry_init(dsn=SENTRY_DSN, environment=env.str("SENTRY_ENVIRONMENT", default="production"))

# --- Operations: RabbitMQ as the broker (README "Choosing the broker") -------------------------

if CELERY_BROKER_URL.startswith(("amqp://", "amqps://", "pyamqp://")):
    # Quorum queues: replicated, durable, and a message unacknowledged by a lost worker goes back
    # to the queue (acks_late). Countdowns and retries use RabbitMQ's native delayed delivery
    # (Celery declares its exchanges; it needs topic exchanges), so a delayed task waits in the
    # broker and not unacknowledged in a worker, where RabbitMQ's consumer_timeout (30 min)
    # would close the channel.
    CELERY_TASK_DEFAULT_QUEUE_TYPE = "quorum"
    CELERY_TASK_DEFAULT_EXCHANGE_TYPE = "topic"
    CELERY_WORKER_DETECT_QUORUM_QUEUES = True
    # The broker confirms every published message: a 201 queues a push RabbitMQ has.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"confirm_publish": True}
