"""Which Klaviyo account the integration talks to, as a fingerprint that keeps no secret.

What we remember sending (``SentCatalogObject``) belongs to one account: switching the key or the
base URL (another Klaviyo account, or a sandbox that starts empty) must start from nothing rather
than trust a memory of objects the new account never received (ARCHITECTURE.md, "What we
remember sending is a cache, not the truth").
"""

import hashlib

from django.conf import settings

FINGERPRINT_LENGTH = 32


def account_fingerprint(*, base_url: str, api_key: str) -> str:
    """32 hex characters of SHA-256 over the base URL (without a trailing slash) and the key.

    One-way: the key cannot be read back from it, and it is stored instead of the key.
    """
    material = f"{base_url.strip().rstrip('/')}\n{api_key.strip()}".encode()
    return hashlib.sha256(material).hexdigest()[:FINGERPRINT_LENGTH]


def current_account() -> str:
    """The fingerprint of ``KLAVIYO_API_URL`` and ``KLAVIYO_API_KEY`` as configured now."""
    return account_fingerprint(base_url=settings.KLAVIYO_API_URL, api_key=settings.KLAVIYO_API_KEY)
