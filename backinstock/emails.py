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


# Google's consumer mail delivers every dotted spelling of a local part to one mailbox, and
# googlemail.com (its name in a few countries once) to the same gmail.com mailbox. Sources:
# Google's help, "Dots don't matter in Gmail addresses" (support.google.com/mail/answer/7436150),
# and its note that gmail.com and googlemail.com are one account. Only these two: a Workspace
# domain, like any other, may tell ``a.nn`` from ``ann``, and nothing says which domains do.
_GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})
_GMAIL_DOMAIN = "gmail.com"


def email_throttle_key(canonical: str) -> str:
    """The mailbox a canonical address delivers to: ``carol+1@x`` → ``carol@x``,
    ``A.n.n+shoes@googlemail.com`` → ``ann@gmail.com``.

    Only the per-address throttle uses it, so that the spellings one mailbox receives under
    cannot multiply its allowance: the ``+tag`` is dropped everywhere (sub-addressing, RFC 5233),
    and for Gmail (``_GMAIL_DOMAINS``, above) the dots of the local part too, with
    ``googlemail.com`` read as ``gmail.com``. The stored identity is not folded (CONTRACT §3
    defines it): ``carol+1`` and ``a.nn@gmail.com`` are kept as written, since each may be a
    filter or a spelling the shopper relies on, and what Klaviyo gets is the address they gave.
    """
    local, _, domain = canonical.rpartition("@")
    mailbox = local.partition("+")[0] or local
    if domain in _GMAIL_DOMAINS:
        mailbox, domain = mailbox.replace(".", "") or mailbox, _GMAIL_DOMAIN
    return f"{mailbox}@{domain}"


def email_for_lookup(raw: str) -> str:
    """``email_canonical(raw, lookup=True)``, for listing and erasing; else ``InvalidInput``."""
    try:
        return email_canonical(raw, lookup=True)
    except EmailInvalid as exc:
        raise InvalidInput({"email": str(exc)}) from None
