"""Email addresses as subscriptions store and match them."""

from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator

_validate = EmailValidator()
MAX_EMAIL_LENGTH = 254


def email_normalize(raw: str) -> str:
    """Trimmed, with the domain lower-cased; the local part is kept as given (CONTRACT §3)."""
    address = raw.strip()
    local, at, domain = address.rpartition("@")
    return f"{local}{at}{domain.lower()}" if at else address


def email_is_valid(address: str) -> bool:
    """Syntax only: no DNS look-up, so the request path never waits on the network."""
    if len(address) > MAX_EMAIL_LENGTH:
        return False
    try:
        _validate(address)
    except ValidationError:
        return False
    return True


def email_match_key(address: str) -> str:
    """The case-insensitive form that uniqueness and look-ups use."""
    return email_normalize(address).lower()
