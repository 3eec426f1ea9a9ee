#!/usr/bin/env python
"""Django's command line. Settings default to production (``config/__init__.py``); development
and the demo set ``DJANGO_SETTINGS_MODULE=config.settings.local``."""

import sys


def main() -> None:
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    import config  # noqa: F401  (sets the settings default before Django reads it)

    try:
        settings.INSTALLED_APPS  # noqa: B018  (loads the settings: a refusal is one clear line)
    except ImproperlyConfigured as exc:
        sys.exit(f"manage.py: {exc}")
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
