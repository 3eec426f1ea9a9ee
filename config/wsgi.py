"""The web process: ``gunicorn config.wsgi``.

Importing ``config`` sets the settings default (production) before anything reads it.
"""

from django.core.wsgi import get_wsgi_application

application = get_wsgi_application()
