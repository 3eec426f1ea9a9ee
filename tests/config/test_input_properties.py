"""Arbitrary input at every endpoint and command that takes input (issue 9.3).

Property-based: hypothesis throws arbitrary JSON, Unicode text (lone surrogates, NUL, other
scripts' digits) and integers of any size, alone and in the places of the contract's fields, and
every answer must be

- never a 5xx;
- a refusal in the contract's one shape, ``{"errors": {"<field>": "<message>", ...}}``;
- a refusal that changed nothing.

Commands must fail with ``CommandError`` (a message and exit 1), never another exception.

The number of examples is fixed (``INPUT_PROPERTY_EXAMPLES``, default below) so that ``make test``
stays within a bounded time. The module runs on PostgreSQL with the suite, and once more on SQLite
in a subprocess (``test_the_properties_hold_on_sqlite``): the two refuse different values (range of
integers, text they cannot store) in different places.
"""

import json
import os
import string
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from hypothesis import HealthCheck, assume, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from backinstock.models import BackInStockProduct, BackInStockVariant, ErasureRecord, Subscription
from klaviyo_sync.models import IntegrationSettings
from shop.models import Country, DisplayItem, Language, Size, State, Stock, Warehouse
from tests.conftest import DEMO_CATALOG
from tests.worker import PROJECT_ROOT

EXAMPLES = int(os.environ.get("INPUT_PROPERTY_EXAMPLES", "40"))
# A fixed number of examples bounds the time in ``make test``; the deadline is generous because
# six processes share two cores, and catches only an example that hangs.
hypothesis_settings.register_profile(
    "input",
    max_examples=EXAMPLES,
    deadline=timedelta(seconds=10),
    database=None,  # no .hypothesis directory in the project
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # the fixtures' rows are what the examples change
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
PROPERTY = hypothesis_settings.get_profile("input")

SHOP_KEY = "property-shop-key"
INTEGRATION_TOKEN = "property-integration-token"
CHECKOUT_URL = "/api/checkout-api/back-in-stock-subscription"
SHOP_SUBSCRIBE_URL = "/api/shop-api/back-in-stock-subscription"
SHOP_LIST_URL = "/api/shop-api/back-in-stock-subscriptions"
STOCK_URL = "/api/integration-api/stock"

# --- strategies ---------------------------------------------------------------------------------

# Every code point, lone surrogates included: json.dumps writes them as \ud800 escapes, as a
# hostile client would.
any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)
tricky_text = st.sampled_from(
    [
        "",
        " ",
        "\x00",
        "\ud800",
        "2³",
        "١٢",
        "1_000",
        "-1",
        "+1",
        "12366-2³",
        "İ",
        "ß",
        "K",
        "\u200b",
    ]
)
text = st.one_of(any_text, tricky_text)
# What a WSGI server can pass in a header: latin-1 text, never NUL, CR or LF (servers refuse them).
header_text = st.one_of(
    st.text(
        st.characters(min_codepoint=1, max_codepoint=255, exclude_characters="\r\n"), max_size=20
    ),
    st.sampled_from(["²", "١٢", "1_0", " 12", "+12", "-1"]).map(
        lambda value: value.encode("utf-8").decode("latin-1")
    ),
)
integers = st.one_of(
    st.integers(),
    st.sampled_from([-1, 0, 2**31 - 1, 2**31, 2**63 - 1, 2**63, -(2**63) - 1, 10**40]),
)
scalars = st.one_of(
    st.none(), st.booleans(), integers, st.floats(allow_nan=True, allow_infinity=True), text
)
any_json = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(text, children, max_size=4)
    ),
    max_leaves=12,
)
item_ids = st.one_of(
    st.builds(lambda a, b: f"{a}-{b}", integers, integers),
    st.sampled_from(["12366-23400", "12999-23500"]),
    text,
)
codes = st.one_of(st.sampled_from(["SE", "se", "US", "NO", "XX", "NY", "ny", "CA"]), text)


def field(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A field's value: mostly of its own kind, sometimes any JSON at all."""
    return st.one_of(values, any_json)


subscribe_bodies = st.one_of(
    any_json,
    st.fixed_dictionaries(
        {
            "item": field(item_ids),
            "shipTo": field(
                st.fixed_dictionaries({"country": field(codes)}, optional={"state": field(codes)})
            ),
            "email": field(st.one_of(st.emails(), text)),
        },
        optional={"language": field(st.one_of(st.sampled_from(["en", "sv", "EN"]), text))},
    ),
)
stock_entries = st.fixed_dictionaries(
    {
        "sku": field(st.one_of(st.sampled_from(["HD-23400", "HD-23500"]), text)),
        "warehouse": field(st.one_of(st.sampled_from(["Stockholm", "New Jersey"]), text)),
        "physical": field(integers),
    },
    optional={"allocated": field(integers)},
)
stock_bodies = st.one_of(
    any_json,
    st.fixed_dictionaries({"stock": st.one_of(st.lists(stock_entries, max_size=4), any_json)}),
)


def _demo_with_one_value_replaced(choice: int, value: Any) -> Any:
    """The demo catalog with its ``choice``-th value (in document order, modulo their number)
    replaced by ``value``: deep in the structure, where hand-written checks hide."""
    document = json.loads(DEMO_CATALOG.read_text(encoding="utf-8"))
    slots: list[tuple[Any, Any]] = []
    pending: list[Any] = [document]
    while pending:
        node = pending.pop()
        keys = node.keys() if isinstance(node, dict) else range(len(node))
        for key in keys:
            slots.append((node, key))
            if isinstance(node[key], dict | list):
                pending.append(node[key])
    container, key = slots[choice % len(slots)]
    container[key] = value
    return document


demo_catalog_mutations = st.builds(
    _demo_with_one_value_replaced, st.integers(min_value=0), st.one_of(scalars, any_json)
)

# --- checks -------------------------------------------------------------------------------------


def database_state() -> list[Any]:
    """Every row the inputs could change, in a comparable form."""
    models = [
        Subscription,
        BackInStockProduct,
        BackInStockVariant,
        ErasureRecord,
        Stock,
        IntegrationSettings,
        Country,
        State,
        Language,
        Warehouse,
        DisplayItem,
        Size,
    ]
    return [
        list(model.objects.order_by("pk").values().iterator())  # type: ignore[attr-defined]
        for model in models
    ]


def assert_answer_keeps_the_contract(response: Any, before: list[Any]) -> None:
    assert response.status_code < 500, response.content
    if response.status_code >= 400:
        body = response.json()
        assert list(body) == ["errors"], body
        errors = body["errors"]
        assert isinstance(errors, dict) and errors, body
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in errors.items()), body
        assert database_state() == before


def post_json(client: APIClient, url: str, body: Any, **headers: str) -> Any:
    return client.generic("POST", url, json.dumps(body), content_type="application/json", **headers)


def assert_command_refuses_cleanly(*args: str) -> None:
    before = database_state()
    try:
        call_command(*args)
    except CommandError:
        assert database_state() == before


@pytest.fixture
def shop(settings, catalog, back_in_stock_on) -> None:
    settings.SHOP_API_KEY = SHOP_KEY
    settings.INTEGRATION_API_TOKEN = INTEGRATION_TOKEN
    settings.SUBSCRIBE_RATE_PER_CLIENT = "none"
    settings.SUBSCRIBE_RATE_PER_EMAIL = "none"
    catalog.size.sku = "HD-23400"
    catalog.size.save()
    catalog.unpublished_size.sku = "HD-23500"
    catalog.unpublished_size.save()


# --- properties ---------------------------------------------------------------------------------

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("shop")]


@PROPERTY
@given(body=subscribe_bodies)
def test_the_checkout_api_subscribe_keeps_the_contract_whatever_the_body(body):
    before = database_state()
    response = post_json(APIClient(), CHECKOUT_URL, body)
    assert_answer_keeps_the_contract(response, before)


@PROPERTY
@given(
    body=subscribe_bodies,
    charset=st.one_of(st.sampled_from(["utf-8", "rot13", "zlib", "idna", "utf-16"]), header_text),
    length=st.one_of(st.none(), integers.map(str), header_text),
)
def test_any_charset_and_content_length_keep_the_contract(body, charset, length):
    encoded = json.dumps(body)
    # A length beyond the body would make a server wait for more; the test client refuses it.
    assume(length is None or _declared_length(length) <= len(encoded))
    before = database_state()
    headers = {} if length is None else {"CONTENT_LENGTH": length}
    response = APIClient().generic(
        "POST",
        CHECKOUT_URL,
        encoded,
        content_type=f"application/json; charset={charset}",
        **headers,
    )
    assert_answer_keeps_the_contract(response, before)


def _declared_length(length: str) -> int:
    """What Django makes of a Content-Length header (its own int(), 0 when that fails)."""
    try:
        return int(length)
    except ValueError:
        return 0


@PROPERTY
@given(body=subscribe_bodies)
def test_the_shop_api_subscribe_keeps_the_contract_whatever_the_body(body):
    before = database_state()
    response = post_json(APIClient(), SHOP_SUBSCRIBE_URL, body, HTTP_API_AUTHORIZATION=SHOP_KEY)
    assert_answer_keeps_the_contract(response, before)


# Addresses the syntax allows but no mail reaches: a local part over RFC 5321's 64 octets, or a
# TLD reserved for tests and documentation (Unicode or punycode).
unusable_emails = st.one_of(
    st.builds(
        lambda local, domain: f"{local}@{domain}",
        st.text(string.ascii_lowercase + string.digits, min_size=65, max_size=120),
        st.sampled_from(["example.com", "shop.se"]),
    ),
    st.builds(
        lambda label, tld: f"ann@{label}.{tld}",
        st.sampled_from(["shop", "xn--bcher-kva", "bücher"]),
        st.sampled_from(
            ["テスト", "испытание", "xn--zckzah", "XN--80AKHBYKNJ4F", "测试", "test", "example"]
        ),
    ),
)


@PROPERTY
@given(email=unusable_emails, url=st.sampled_from([CHECKOUT_URL, SHOP_SUBSCRIBE_URL]))
def test_an_address_no_mail_reaches_is_a_400_on_email_and_stores_nothing(email, url):
    before = database_state()
    body = {"item": "12366-23400", "shipTo": {"country": "SE"}, "email": email}
    response = post_json(APIClient(), url, body, HTTP_API_AUTHORIZATION=SHOP_KEY)

    assert response.status_code == 400, response.content
    assert list(response.json()["errors"]) == ["email"]
    assert database_state() == before


@PROPERTY
@given(email=st.one_of(text, st.emails()), method=st.sampled_from(["GET", "DELETE"]))
def test_the_shop_api_list_and_erase_keep_the_contract_whatever_the_address(email, method):
    before = database_state()
    response = APIClient().generic(
        method,
        SHOP_LIST_URL,
        QUERY_STRING=f"email={_percent_encoded(email)}",
        HTTP_API_AUTHORIZATION=SHOP_KEY,
    )
    assert_answer_keeps_the_contract(response, before)


def _percent_encoded(value: str) -> str:
    from urllib.parse import quote

    return quote(value.encode("utf-8", "surrogatepass"), safe="")


@PROPERTY
@given(body=stock_bodies)
def test_the_integration_api_keeps_the_contract_whatever_the_body(body):
    before = database_state()
    response = post_json(
        APIClient(), STOCK_URL, body, HTTP_AUTHORIZATION=f"Bearer {INTEGRATION_TOKEN}"
    )
    assert_answer_keeps_the_contract(response, before)


@PROPERTY
@given(document=st.one_of(any_json, demo_catalog_mutations))
def test_import_catalog_refuses_any_document_with_a_command_error(document, tmp_path_factory):
    path = tmp_path_factory.mktemp("catalog") / "catalog.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    assert_command_refuses_cleanly("import_catalog", str(path), "--no-progress")


@PROPERTY
@given(sku=text, warehouse=text, physical=st.one_of(integers.map(str), text))
def test_set_stock_refuses_any_arguments_with_a_command_error(sku, warehouse, physical):
    assert_command_refuses_cleanly("set_stock", sku, warehouse, physical)


@PROPERTY
@given(
    option=st.sampled_from(
        [
            "--minimum-stock-level",
            "--product-url-template",
            "--base-currency",
            "--catalog-sync",
            "--back-in-stock",
        ]
    ),
    value=st.one_of(integers.map(str), text),
)
def test_klaviyo_configure_refuses_any_value_with_a_command_error(option, value):
    assert_command_refuses_cleanly("klaviyo", "configure", f"{option}={value}")


@pytest.mark.slow
def test_the_properties_hold_on_sqlite(tmp_path):
    if connection.vendor == "sqlite":
        pytest.skip("this run is the SQLite one")
    environment = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'properties.sqlite3'}",
        "PYTHONUNBUFFERED": "1",
    }
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(Path(__file__).relative_to(PROJECT_ROOT)),
            "-q",
            "-p",
            "no:cacheprovider",
            "-m",
            "not slow",
        ],
        cwd=PROJECT_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
