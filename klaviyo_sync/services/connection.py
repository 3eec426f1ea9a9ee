"""Is Klaviyo reachable with our key? (``manage.py klaviyo check``, CONTRACT §6, and the admin's
"Test Klaviyo connection" button.)"""

from dataclasses import dataclass

from django.conf import settings

from klaviyo_sync.client import (
    KlaviyoClient,
    KlaviyoError,
    KlaviyoNotConfigured,
    url_without_credentials,
)

AUTH_STATUSES = (401, 403)


@dataclass(frozen=True)
class ConnectionCheck:
    """The outcome, as one line an operator can act on."""

    ok: bool
    message: str


def _where() -> str:
    return url_without_credentials(settings.KLAVIYO_API_URL)


def klaviyo_connection_check(*, client: KlaviyoClient | None = None) -> ConnectionCheck:
    """One cheap authenticated read, ``GET /api/accounts`` (rate class accounts: 1/s, 15/min).

    Tells apart a missing key or an invalid ``KLAVIYO_API_URL`` (nothing sent), a key Klaviyo
    refuses (401/403: wrong, revoked, or without the ``accounts:read`` scope), no answer (Klaviyo
    unreachable: connection failed or timed out; or a request that could not be sent), and any
    other answer. Only an answer has a status to report. Never raises for these and never shows
    the key.
    """
    client = client or KlaviyoClient.from_settings()
    try:
        answer = client.accounts_get()
    except KlaviyoNotConfigured as exc:
        if exc.setting != "KLAVIYO_API_KEY":
            return ConnectionCheck(False, str(exc))
        return ConnectionCheck(
            False,
            "No Klaviyo API key: set KLAVIYO_API_KEY (nothing is sent to Klaviyo without it).",
        )
    except KlaviyoError as exc:
        if exc.status is None and exc.retryable:
            return ConnectionCheck(False, f"Klaviyo cannot be reached at {_where()}: {exc.detail}.")
        if exc.status is None:
            return ConnectionCheck(False, f"The request to Klaviyo at {_where()} {exc.detail}.")
        if exc.retryable:
            return ConnectionCheck(
                False,
                f"Klaviyo at {_where()} answered {exc.status}; try again later ({exc.detail}).",
            )
        if exc.status in AUTH_STATUSES:
            return ConnectionCheck(
                False,
                f"Klaviyo refused the API key ({exc.status}): check KLAVIYO_API_KEY and that the "
                "key has the accounts:read scope.",
            )
        return ConnectionCheck(False, f"Klaviyo at {_where()} answered {exc.status}: {exc.detail}")
    accounts = answer.get("data") or [{}]
    account = accounts[0] if isinstance(accounts, list) and accounts else {}
    name = ((account.get("attributes") or {}).get("contact_information") or {}).get(
        "organization_name"
    )
    who = f"account {name} ({account.get('id')})" if name else f"account {account.get('id')}"
    return ConnectionCheck(True, f"Klaviyo at {_where()} accepted the key: {who}.")
