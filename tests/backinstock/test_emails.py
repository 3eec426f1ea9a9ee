"""The canonical form of an address (backinstock.emails): one address is one person."""

import string
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backinstock.emails import EmailInvalid, email_canonical, email_throttle_key


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("  Ann.Lee@Example.COM \n", "ann.lee@example.com"),
        ("idn@bücher.de", "idn@xn--bcher-kva.de"),
        ("idn@XN--BCHER-KVA.de", "idn@xn--bcher-kva.de"),
        ("idn@BÜCHER.de", "idn@xn--bcher-kva.de"),
        ("a" * 64 + "@example.com", "a" * 64 + "@example.com"),  # RFC 5321's longest
        ("\u212aate@example.com", "kate@example.com"),  # KELVIN SIGN is K once normalised
        ("ann@\uff25\uff38\uff21\uff2d\uff30\uff2c\uff25.com", "ann@example.com"),  # full-width
        ("carol+shoes@example.com", "carol+shoes@example.com"),
    ],
)
def test_spellings_of_one_address_have_one_canonical_form(raw, canonical):
    assert email_canonical(raw) == canonical


@pytest.mark.parametrize(
    "raw",
    [
        "a\u200bnn@example.com",  # zero-width space
        "ann@exa\u200bmple.com",
        "an\u00adn@example.com",  # soft hyphen
        "ann@exa\u00admple.com",
        "a\x1bnn@example.com",  # escape
        "ann@example.com\x00",
        "ann@ex\u200dample.com",  # zero-width joiner
        "ann\u202e@example.com",  # right-to-left override
        "ann@[127.0.0.1]",  # IP literal
        "ann@[IPv6:::1]",
        "ann@localhost",  # dotless
        "ann@example",
        "İvan@example.com",  # non-ASCII local part (README, subscribe rules)
        "dİana@example.com",
        "jörg@example.com",
        '"ann lee"@example.com',
        "Ann <ann@example.com>",
        "ann@@example.com",
        "",
        "   ",
        "a" * 250 + "@example.com",
    ],
)
def test_control_invisible_and_unusable_addresses_are_refused(raw):
    with pytest.raises(EmailInvalid, match="email"):
        email_canonical(raw)


# The IANA's reserved IDN test TLDs (the eleven "example.テスト" domains of 2007), and the TLDs
# RFC 2606 / 6761 / 9476 and ICANN reserve: no mail is ever delivered under them.
IDN_TEST_TLDS = {
    "إختبار": "xn--kgbechtv",
    "آزمایشی": "xn--hgbk6aj7f53bba",
    "测试": "xn--0zwm56d",
    "測試": "xn--g6w251d",
    "испытание": "xn--80akhbyknj4f",
    "परीक्षा": "xn--11b5bs3a9aj6g",
    "δοκιμή": "xn--jxalpdlp",
    "테스트": "xn--9t4b11yi5a",
    "טעסט": "xn--deba0ad",
    "テスト": "xn--zckzah",
    "பரிட்சை": "xn--hlcj6aya9esc7a",
}
RESERVED_TLDS = [
    *IDN_TEST_TLDS,
    *IDN_TEST_TLDS.values(),
    "XN--ZCKZAH",
    "test",
    "example",
    "EXAMPLE",
    "invalid",
    "localhost",
    "alt",
    "internal",
]


@pytest.mark.parametrize("tld", RESERVED_TLDS)
def test_an_address_under_a_reserved_tld_is_refused(tld):
    with pytest.raises(EmailInvalid, match="email"):
        email_canonical(f"ann@shop.{tld}")


@pytest.mark.parametrize("length", [65, 66, 70, 100])
def test_a_local_part_longer_than_64_octets_is_refused(length):
    with pytest.raises(EmailInvalid, match="64"):
        email_canonical("a" * length + "@example.com")


@pytest.mark.parametrize("address", ["a" * 70 + "@example.com", "ann@shop.テスト", "ann@x.example"])
def test_a_look_up_still_finds_an_address_stored_before_it_was_refused(address):
    assert email_canonical(address, lookup=True).startswith(address[:3])


def test_a_look_up_also_finds_an_address_with_a_non_ascii_local_part():
    assert email_canonical("İda@Example.com", lookup=True) == "i\u0307da@example.com"
    assert email_canonical("İvan@example.com", lookup=True) != "ivan@example.com"


@pytest.mark.parametrize("lookup", [False, True])
def test_look_ups_refuse_what_subscribing_refuses_but_the_local_part(lookup):
    with pytest.raises(EmailInvalid):
        email_canonical("ann@[127.0.0.1]", lookup=lookup)
    with pytest.raises(EmailInvalid):
        email_canonical("a\u200bnn@example.com", lookup=lookup)


def test_the_throttle_key_is_the_mailbox_without_its_plus_tag():
    assert email_throttle_key("carol+12@example.com") == "carol@example.com"
    assert email_throttle_key("carol@example.com") == "carol@example.com"
    assert email_throttle_key("+x@example.com") == "+x@example.com"


@pytest.mark.parametrize(
    "alias",
    [
        "a.n.n@gmail.com",
        "an.n@gmail.com",
        "ann@googlemail.com",
        "a.nn+shoes@googlemail.com",
        "A.n.N+x.y@GMail.com",
    ],
)
def test_the_throttle_key_folds_gmail_s_dots_and_googlemail(alias):
    assert email_throttle_key(email_canonical(alias)) == "ann@gmail.com"


def test_the_throttle_key_keeps_dots_where_the_provider_may_tell_them_apart():
    assert email_throttle_key("a.n.n@example.com") == "a.n.n@example.com"
    assert email_throttle_key("a.n.n@mail.gmail.com") == "a.n.n@mail.gmail.com"
    assert email_throttle_key("a.n.n@gmail.co") == "a.n.n@gmail.co"


@settings(max_examples=200, deadline=None)
@given(
    local=st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=12),
    dots=st.lists(st.integers(min_value=1, max_value=11), max_size=4),
    tag=st.one_of(st.just(""), st.text(string.ascii_lowercase + ".", max_size=6).map("+{}".format)),
    domain=st.sampled_from(["gmail.com", "googlemail.com", "GMail.com", "GOOGLEMAIL.COM"]),
)
def test_every_dotted_and_tagged_spelling_of_a_gmail_mailbox_has_one_throttle_key(
    local, dots, tag, domain
):
    dotted = local
    for where in sorted(set(dots), reverse=True):
        if where < len(dotted) and dotted[where - 1] != "." and dotted[where] != ".":
            dotted = dotted[:where] + "." + dotted[where:]
    try:
        canonical = email_canonical(f"{dotted}{tag}@{domain}")
    except EmailInvalid:
        return
    assert email_throttle_key(canonical) == f"{local}@gmail.com"


_ADDRESS_CHARACTERS = st.characters(codec="utf-8", categories=["L", "M", "N", "P", "S", "Z", "C"])
_addresses = st.one_of(
    st.text(_ADDRESS_CHARACTERS, max_size=40),
    st.builds(
        lambda local, domain, tld: f"{local}@{domain}.{tld}",
        st.text(_ADDRESS_CHARACTERS, min_size=1, max_size=20),
        st.text(_ADDRESS_CHARACTERS, min_size=1, max_size=20),
        st.sampled_from(["com", "se", "de", "XN--P1AI", "рф", *RESERVED_TLDS]),
    ),
    st.builds(
        lambda local, domain: f"{local}@{domain}.com",
        st.text(string.ascii_letters + string.digits + ".+-_", min_size=1, max_size=20),
        st.text(string.ascii_letters + string.digits + "-", min_size=1, max_size=20),
    ),
)
_REFUSED = {"Cc", "Cf", "Co", "Cs", "Cn", "Zl", "Zp"}
_RESERVED_ASCII_TLDS = {tld.lower() for tld in RESERVED_TLDS if tld.isascii()}


@settings(max_examples=400, deadline=None)
@given(raw=_addresses, lookup=st.booleans())
def test_the_canonical_form_is_stable_and_only_refuses_with_its_own_error(raw, lookup):
    try:
        canonical = email_canonical(raw, lookup=lookup)
    except EmailInvalid:
        return
    assert email_canonical(canonical, lookup=lookup) == canonical
    assert canonical == canonical.strip()
    assert canonical == unicodedata.normalize("NFC", canonical)
    assert canonical.split("@")[-1].isascii()
    assert not any(unicodedata.category(c) in _REFUSED for c in canonical)
    if not lookup:
        assert canonical.isascii() and canonical == canonical.lower()
        assert len(canonical.rpartition("@")[0]) <= 64
        assert canonical.rpartition(".")[2] not in _RESERVED_ASCII_TLDS
    throttle_key = email_throttle_key(canonical)
    assert email_throttle_key(throttle_key) == throttle_key


@settings(max_examples=200, deadline=None)
@given(
    local=st.text(string.ascii_letters + string.digits + "_-", min_size=56, max_size=72),
    domain=st.sampled_from(["example.com", "bücher.de", "shop.se"]),
)
def test_a_local_part_is_accepted_exactly_up_to_64_octets(local, domain):
    try:
        canonical = email_canonical(f"{local}@{domain}")
    except EmailInvalid:
        assert len(local) > 64
    else:
        assert len(local) <= 64 and canonical.startswith(local.lower() + "@")


@settings(max_examples=200, deadline=None)
@given(
    label=st.text(string.ascii_lowercase + "-", min_size=1, max_size=20).filter(
        lambda label: not label.startswith("-") and not label.endswith("-")
    ),
    tld=st.sampled_from(RESERVED_TLDS),
    upper=st.booleans(),
)
def test_every_address_under_a_reserved_tld_is_refused_however_spelt(label, tld, upper):
    address = f"ann@{label}.{tld}"
    with pytest.raises(EmailInvalid):
        email_canonical(address.upper() if upper else address)


@settings(max_examples=200, deadline=None)
@given(
    local=st.text(string.ascii_lowercase, min_size=1, max_size=10),
    bad=st.sampled_from(["\u200b", "\u00ad", "\x1b", "\u200d", "\ufeff", "\u2060", "\x7f"]),
    where=st.integers(min_value=0, max_value=10),
)
def test_an_invisible_or_control_character_anywhere_is_refused(local, bad, where):
    address = f"{local}@example.com"
    where = min(where, len(address) - 1)
    with pytest.raises(EmailInvalid):
        email_canonical(address[:where] + bad + address[where:], lookup=True)
