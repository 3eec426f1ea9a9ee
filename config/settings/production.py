"""Production: only tightens the base settings."""

from django.core.exceptions import ImproperlyConfigured

from operations.logs import logging_config

from .base import *  # noqa: F403
from .base import LOG_LEVEL, SECRET_KEY, env

# Django's own rule for a weak key (security.W009: ``check --deploy`` only warns; here it stops
# the process) plus our development default's prefix.
SECRET_KEY_MIN_LENGTH = 50
SECRET_KEY_MIN_UNIQUE_CHARACTERS = 5
_WEAK_KEY_PREFIXES = ("dev-only-", "django-insecure")


def secret_key_problem(key: str) -> str | None:
    """Why ``key`` is unfit for production, or None (Django's W009 rule and our dev prefix)."""
    if key.startswith(_WEAK_KEY_PREFIXES):
        return "is a development key"
    if len(key) < SECRET_KEY_MIN_LENGTH:
        return f"has fewer than {SECRET_KEY_MIN_LENGTH} characters"
    if len(set(key)) < SECRET_KEY_MIN_UNIQUE_CHARACTERS:
        return f"has fewer than {SECRET_KEY_MIN_UNIQUE_CHARACTERS} different characters"
    return None


_problem = secret_key_problem(SECRET_KEY)
if _problem:
    raise ImproperlyConfigured(
        f"DJANGO_SECRET_KEY {_problem}: set a random secret of at least {SECRET_KEY_MIN_LENGTH} "
        "characters (for development, set DJANGO_SETTINGS_MODULE=config.settings.local)."
    )

DEBUG = False
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# On by default (CONTRACT §2); switch off where a proxy in front already redirects or in local
# tests over plain HTTP.
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=365 * 24 * 3600)
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
