"""Email addresses: the one canonical form that subscriptions store, match and send.

One address is one person (CONTRACT §3). Every path that takes an address (subscribing, listing,
erasing, the per-address throttle, the erasure audit, what Klaviyo receives) goes through
``email_canonical``, so that two spellings of one mailbox can never be two subscriptions, and an
erasure finds every row its address stands for.

The canonical form: trimmed; Unicode-normalised (NFC, so ``K`` written as the Kelvin sign U+212A
is ``K``); syntax checked by ``email-validator`` with no DNS look-up; the domain IDNA-encoded
(``bücher.example`` is ``xn--bcher-kva.example``); then the whole address lower-cased, as
matching has always been case-insensitive and no mail provider in use tells ``Ann`` from ``ann``.

Refused: control, invisible and format characters (zero-width space, soft hyphen, escape), quoted
local parts, IP-literal domains (``ann@[127.0.0.1]``), dotless and special-use domains
(``ann@localhost``), and non-ASCII local parts. Klaviyo documents no support for internationalised
(SMTPUTF8) mailboxes and most sending infrastructure has none, so such an address would be a
subscription Klaviyo can never email: it is refused at once with a clear error instead. Domains
may be internationalised: they are sent IDNA-encoded, which every mail system understands.

Look-ups (listing, erasure) also accept non-ASCII local parts (``lookup=True``), so that rows
stored before this rule existed can still be listed and erased by their owner.
"""

import unicodedata

from email_validator import EmailNotValidError, validate_email

from config.api.errors import InvalidInput

MAX_EMAIL_LENGTH = 254


class EmailInvalid(ValueError):
    """The address is refused; the message says why, in words a shopper understands."""


def email_canonical(raw: str, *, lookup: bool = False) -> str:
    """The canonical form of an address: ``" Ann@Bücher.Example"`` → ``ann@xn--bcher-kva.example``.

    ``lookup=True`` also accepts non-ASCII local parts (lower-cased as Python does), for finding
    rows stored before they were refused. Raises ``EmailInvalid`` and nothing else.
    """
    if not isinstance(raw, str):
        raise EmailInvalid("email must be a string")
    address = unicodedata.normalize("NFC", raw.strip())
    if not address:
        raise EmailInvalid("email is required")
    if len(address) > MAX_EMAIL_LENGTH:
        raise EmailInvalid(f"email is longer than {MAX_EMAIL_LENGTH} characters")
    try:
        validated = validate_email(
            address,
            check_deliverability=False,  # no DNS in the request path
            allow_smtputf8=lookup,
            allow_quoted_local=False,
            allow_domain_literal=False,
            allow_display_name=False,
            globally_deliverable=True,  # refuses dotless and special-use domains
        )
    except EmailNotValidError as exc:
        raise EmailInvalid(f"email is not a valid address: {exc}") from None
    except Exception as exc:  # the library's own faults on odd input must still be a 400
        raise EmailInvalid("email is not a valid address") from exc
    local = unicodedata.normalize("NFC", validated.local_part.lower())
    return f"{local}@{validated.ascii_domain.lower()}"


def email_throttle_key(canonical: str) -> str:
    """The mailbox a canonical address delivers to, without a ``+tag``: ``carol+1@x`` → ``carol@x``.

    Only the per-address throttle uses it: ``carol+1`` and ``carol+2`` are one person asking
    twice, while uniqueness keeps the whole address (each may be a filter the shopper relies on).
    """
    local, _, domain = canonical.rpartition("@")
    mailbox = local.partition("+")[0] or local
    return f"{mailbox}@{domain}"


def email_for_lookup(raw: str) -> str:
    """``email_canonical(raw, lookup=True)``, for listing and erasing; else ``InvalidInput``."""
    try:
        return email_canonical(raw, lookup=True)
    except EmailInvalid as exc:
        raise InvalidInput({"email": str(exc)}) from None
