"""Writes of the Klaviyo integration, split by sub-domain.

- ``settings``: the integration's switches and options.
- ``jobs``: running catalog bulk jobs to completion.
- ``catalog``: full and incremental catalog sync.
- ``subscriptions``: pushing back-in-stock subscriptions (flow 2).
"""

from klaviyo_sync.services.settings import integration_settings_update

__all__ = ["integration_settings_update"]
