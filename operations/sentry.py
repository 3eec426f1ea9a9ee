"""Error reporting to Sentry when ``SENTRY_DSN`` is set. Imported by the settings."""

from __future__ import annotations

import sentry_sdk
from sentry_sdk.integrations.celery import CeleryIntegration
from sentry_sdk.integrations.django import DjangoIntegration


def sentry_init(*, dsn: str, environment: str) -> None:
    """Start the Sentry client for Django and Celery, without personal data.

    ``send_default_pii=False`` keeps users, IP addresses, cookies and bodies out of events, and
    local variables (where an address may sit) are not sent either. Only errors: no tracing.
    """
    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        integrations=[DjangoIntegration(), CeleryIntegration()],
        send_default_pii=False,
        include_local_variables=False,
        max_request_body_size="never",
        traces_sample_rate=0.0,
    )
