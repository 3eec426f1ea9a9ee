"""Email addresses: the one canonical form that subscriptions store, match and send.

One address is one person (CONTRACT §3). Every path that takes an address (subscribing, listing,
erasing, the per-address throttle, the erasure audit, what Klaviyo receives) goes through
``email_canonical``, so that two spellings of one mailbox can never be two subscriptions, and an
erasure finds every row its address stands for.

The canonical form: trimmed; Unicode-normalised (NFC, so ``K`` written as the Kelvin sign U+212A
is ``K``); syntax checked by ``email-validator`` with no DNS look-up; the domain IDNA-encoded
(``bücher.de`` is ``xn--bcher-kva.de``); then the whole address lower-cased, as
matching has always been case-insensitive and no mail provider in use tells ``Ann`` from ``ann``.

Refused: control, invisible and format characters (zero-width space, soft hyphen, escape), quoted
local parts, IP-literal domains (``ann@[127.0.0.1]``), dotless and special-use domains
(``ann@localhost``), local parts over 64 octets (RFC 5321), domains under a TLD reserved for
tests and documentation (``.test``, ``.example``, ``.テスト``: ``RESERVED_TLDS``), and non-ASCII
local parts. Klaviyo documents no support for internationalised
(SMTPUTF8) mailboxes and most sending infrastructure has none, so such an address would be a
subscription Klaviyo can never email: it is refused at once with a clear error instead. Domains
may be internationalised: they are sent IDNA-encoded, which every mail system understands.

Look-ups (listing, erasure) also accept non-ASCII local parts, long local parts and reserved TLDs
(``lookup=True``), so that rows stored before these rules existed can still be listed and erased
by their owner.
"""

import unicodedata

from email_validator import EmailNotValidError, validate_email

from config.api.errors import InvalidInput

MAX_EMAIL_LENGTH = 254
# RFC 5321 §4.5.3.1.1: "The maximum total length of a user name or other local-part is 64
# octets." email-validator checks it only in its strict mode, which refuses more than this.
MAX_LOCAL_PART_LENGTH = 64
# Top-level domains under which no mail is ever delivered, because they are reserved for tests,
# documentation or private use: RFC 2606 (test, example, invalid, localhost), RFC 6761, RFC 9476
# (alt), ICANN's 2024 reservation of internal, and the IANA's eleven IDN test TLDs, the
# "example.テスト" domains of 2007, reserved since they left the root zone in 2013 (their
# punycode forms, as the domain is compared once IDNA-encoded). email-validator's
# ``globally_deliverable`` already refuses test, invalid, localhost, local, onion and arpa; it
# leaves example to its DNS check (RFC 6761 §6.5 asks applications not to treat it as special,
# and no MX answers for it), which this project never runs in the request path, so it is refused
# here. Second-level example.com/.net/.org are left alone: they are registered domains (held by
# IANA), and the contract's own examples use them.
RESERVED_TLDS = frozenset(
    {
        "test",
        "example",
        "invalid",
        "localhost",
        "alt",
        "internal",
        "xn--kgbechtv",  # إختبار, Arabic
        "xn--hgbk6aj7f53bba",  # آزمایشی, Persian
        "xn--0zwm56d",  # 测试, Chinese (simplified)
        "xn--g6w251d",  # 測試, Chinese (traditional)
        "xn--80akhbyknj4f",  # испытание, Russian
        "xn--11b5bs3a9aj6g",  # परीक्षा, Hindi
        "xn--jxalpdlp",  # δοκιμή, Greek
        "xn--9t4b11yi5a",  # 테스트, Korean
        "xn--deba0ad",  # טעסט, Yiddish
        "xn--zckzah",  # テスト, Japanese
        "xn--hlcj6aya9esc7a",  # பரிட்சை, Tamil
    }
)


class EmailInvalid(ValueError):
    """The address is refused; the message says why, in words a shopper understands."""


def email_canonical(raw: str, *, lookup: bool = False) -> str:
    """The canonical form of an address: ``" Ann@Bücher.DE"`` → ``ann@xn--bcher-kva.de``.

    ``lookup=True`` also accepts non-ASCII local parts (lower-cased as Python does), local parts
    over 64 octets and reserved TLDs, for finding rows stored before they were refused. Raises
    ``EmailInvalid`` and nothing else.
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
    domain = validated.ascii_domain.lower()
    if not lookup:  # rows stored before these rules must stay findable by their owner
        _deliverable_check(local=local, domain=domain)
    return f"{local}@{domain}"


def _deliverable_check(*, local: str, domain: str) -> None:
    """Refuse what the syntax allows but no mail reaches (``MAX_LOCAL_PART_LENGTH``,
    ``RESERVED_TLDS``); ``domain`` IDNA-encoded. Raises ``EmailInvalid``."""
    octets = len(local.encode("utf-8"))
    if octets > MAX_LOCAL_PART_LENGTH:
        raise EmailInvalid(
            f"email is not a valid address: the part before the @-sign is {octets} characters "
            f"long, and may be at most {MAX_LOCAL_PART_LENGTH} (RFC 5321)"
        )
    if domain.rpartition(".")[2] in RESERVED_TLDS:
        raise EmailInvalid(
            "email is not a valid address: the part after the @-sign is under a domain "
            "reserved for tests and examples, which receives no mail"
        )


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
