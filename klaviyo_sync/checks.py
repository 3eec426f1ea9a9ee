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


URL_SCHEMES = ("https", "http")  # http for a local sandbox (the demo's, the tests')


def api_url_problem(url: str) -> str | None:
    """What keeps ``KLAVIYO_API_URL`` from being a base URL a request can be sent to, or None.

    An absolute http(s) URL with a host and, if any, a port from 1 to 65535 (RFC 3986 §3; the
    schemes requests can send). The words never repeat the value: a key pasted into the wrong
    setting would otherwise be shown.
    """
    if url != url.strip():
        return "it has a space or line break at its start or end"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        if "port" in str(exc).lower():
            return "its port is not a number from 1 to 65535"
        return "it cannot be read as a URL"
    if parts.scheme.lower() not in URL_SCHEMES:
        if not parts.netloc:  # "a.klaviyo.com", "not a url", "a.klaviyo.com:443"
            return "it must start with https://"
        return f"its scheme must be https or http, not {parts.scheme}"
    if any(character.isspace() for character in url):
        return "it contains whitespace"
    if not parts.hostname:
        return "it names no host"
    if port == 0:
        return "its port is not a number from 1 to 65535"
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        return "it has a query or fragment (the base URL is only scheme, host and port)"
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
    try:
        parts = urlsplit(settings.KLAVIYO_API_URL)
        credentials = parts.username is not None or parts.password is not None
    except ValueError:  # unreadable: the client and ``klaviyo check`` say so (api_url_problem)
        return []
    if not credentials:
        return []
    return [
        Error(
            "KLAVIYO_API_URL contains a user name or password.",
            hint="Remove the user:password@ part: Klaviyo authenticates with KLAVIYO_API_KEY, "
            "and credentials in the URL would be sent instead of the key.",
            id="klaviyo_sync.E002",
        )
    ]
