"""Production: only tightens the base settings."""

from django.core.exceptions import ImproperlyConfigured

from operations.logs import logging_config

from .base import *  # noqa: F403
from .base import LOG_LEVEL, SECRET_KEY, env

if SECRET_KEY.startswith("dev-only-") or len(SECRET_KEY) < 32:
    raise ImproperlyConfigured("Set DJANGO_SECRET_KEY to a real secret of at least 32 characters.")

DEBUG = False
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_CONTENT_TYPE_NOSNIFF = True
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=600)  # noqa: F405

# --- Operations: JSON logs by default ---------------------------------------------------------
LOG_FORMAT = env.str("LOG_FORMAT", default="json")
LOGGING = logging_config(log_format=LOG_FORMAT, level=LOG_LEVEL)

# --- Operations: static files, served by whitenoise from `collectstatic`'s output ----------------
# Hashed names cached for a year, compressed; `manage.py collectstatic` is part of the start.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
