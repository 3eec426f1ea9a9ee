"""``manage.py check``: settings of the Klaviyo integration that would fail every call."""

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import CheckMessage, Error, register


def api_key_problem(key: str) -> str | None:
    """What is wrong with a Klaviyo private key's characters, or None. Never shows the key.

    ``KLAVIYO_API_KEY`` is stripped when read; what is left must be printable ASCII without
    spaces, or the ``Authorization`` header cannot carry it (requests raises ``InvalidHeader``
    with the header's value in its text).
    """
    if any(character.isspace() for character in key):
        return "contains whitespace"
    if not key.isascii():
        return "contains non-ASCII characters"
    if not key.isprintable():
        return "contains control characters"
    return None


@register("klaviyo")
def klaviyo_api_key_check(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    problem = api_key_problem(settings.KLAVIYO_API_KEY)
    if problem is None:
        return []
    return [
        Error(
            f"KLAVIYO_API_KEY {problem}.",
            hint="Set it to the private key exactly as Klaviyo shows it (pk_...).",
            id="klaviyo_sync.E001",
        )
    ]


@register("klaviyo")
def klaviyo_api_url_check(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """``user:password@`` in ``KLAVIYO_API_URL`` would be sent as HTTP Basic auth in place of the
    key (requests does that), and Klaviyo would refuse every call as if the key were wrong."""
    parts = urlsplit(settings.KLAVIYO_API_URL)
    if parts.username is None and parts.password is None:
        return []
    return [
        Error(
            "KLAVIYO_API_URL contains a user name or password.",
            hint="Remove the user:password@ part: Klaviyo authenticates with KLAVIYO_API_KEY, "
            "and credentials in the URL would be sent instead of the key.",
            id="klaviyo_sync.E002",
        )
    ]
