from backinstock.services import subscription_create
from tests.klaviyo_sync.conftest import demo_catalog, sandbox  # noqa: F401  (fixtures)


def subscribe_in_sweden(email: str) -> int:
    """Subscribe ``email`` to size M (23400) of display item 12366 in Sweden; its id."""
    return subscription_create(
        item="12366-23400", country_code="SE", state_code=None, email=email, language_code=None
    ).subscription_id
