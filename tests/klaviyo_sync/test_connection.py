import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from klaviyo_sandbox.ratelimit import REAL_LIMITS
from klaviyo_sync.ratelimit import KLAVIYO_RATE_LIMITS
from klaviyo_sync.services.connection import klaviyo_connection_check
from tests.sandbox import API_KEY, klaviyo_sandbox_fixture  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
CLOSED_PORT_URL = "http://127.0.0.1:9"  # discard: nothing listens there on a test machine


@pytest.fixture
def klaviyo(settings, klaviyo_sandbox):
    settings.KLAVIYO_API_URL = klaviyo_sandbox.url
    settings.KLAVIYO_API_KEY = API_KEY
    settings.REDIS_URL = ""
    return klaviyo_sandbox


def test_the_check_reads_the_account_once_and_says_the_key_was_accepted(klaviyo):
    result = klaviyo_connection_check()

    assert result.ok
    assert result.message == (
        f"Klaviyo at {klaviyo.url} accepted the key: account Klaviyo sandbox (SANDBOX)."
    )
    assert klaviyo.snapshot()["calls"] == {"GET /api/accounts": 1}


def test_the_command_prints_the_one_line_and_exits_zero(klaviyo, capsys):
    call_command("klaviyo", "check")

    assert capsys.readouterr().out.strip().splitlines() == [
        f"Klaviyo at {klaviyo.url} accepted the key: account Klaviyo sandbox (SANDBOX)."
    ]


@pytest.mark.parametrize(
    ("key", "url", "expected"),
    [
        ("", None, "No Klaviyo API key: set KLAVIYO_API_KEY"),
        ("not-a-private-key", None, "Klaviyo refused the API key (401)"),
        (API_KEY, CLOSED_PORT_URL, f"Klaviyo cannot be reached at {CLOSED_PORT_URL}"),
    ],
    ids=["missing key", "wrong key", "unreachable"],
)
def test_the_command_fails_with_one_clear_line(klaviyo, settings, key, url, expected):
    settings.KLAVIYO_API_KEY = key
    settings.KLAVIYO_API_URL = url or klaviyo.url

    with pytest.raises(CommandError) as failure:
        call_command("klaviyo", "check")

    assert str(failure.value).startswith(expected)
    assert "\n" not in str(failure.value)
    assert key not in str(failure.value) or not key


INVALID_URLS = [
    ("not a url", "it must start with https://"),
    ("a.klaviyo.com", "it must start with https://"),
    ("ftp://x", "its scheme must be https or http, not ftp"),
    ("http://", "it names no host"),
    ("https://:443", "it names no host"),
    ("https://a.klaviyo.com:port", "its port is not a number from 1 to 65535"),
    ("https://a.klaviyo.com:99999", "its port is not a number from 1 to 65535"),
    ("https://a.klaviyo .com", "it contains whitespace"),
    ("http://[::1", "it cannot be read as a URL"),
    ("http://127.0.0.1:8310 ", "it has a space or line break at its start or end"),
    (
        "https://a.klaviyo.com/?x=1",
        "it has a query or fragment (the base URL is only scheme, host and port)",
    ),
    (
        "https://a.klaviyo.com#f",
        "it has a query or fragment (the base URL is only scheme, host and port)",
    ),
    ("pk_secret_1234", "it must start with https://"),  # the key pasted in the wrong place
]


@pytest.mark.parametrize(("url", "problem"), INVALID_URLS)
def test_an_invalid_url_is_named_as_such_and_no_request_is_made(klaviyo, settings, url, problem):
    settings.KLAVIYO_API_URL = url

    result = klaviyo_connection_check()

    assert not result.ok
    assert result.message == (
        f"KLAVIYO_API_URL is not a valid URL: {problem}; nothing is sent to Klaviyo until it is "
        "set to Klaviyo's (https://a.klaviyo.com) or a sandbox's."
    )
    assert "None" not in result.message
    assert "pk_secret_1234" not in result.message
    assert klaviyo.snapshot()["calls"] == {}


def test_a_request_that_cannot_be_sent_is_not_said_to_be_answered(klaviyo, settings):
    settings.KLAVIYO_API_KEY = f"{API_KEY}\n"  # as if read without stripping

    result = klaviyo_connection_check()

    assert result.message == (
        f"The request to Klaviyo at {klaviyo.url} could not be sent (InvalidHeader); check "
        "KLAVIYO_API_KEY and KLAVIYO_API_URL (manage.py check)."
    )
    assert API_KEY not in result.message


@pytest.mark.parametrize(
    ("url", "said"),
    [
        (CLOSED_PORT_URL, f"Klaviyo cannot be reached at {CLOSED_PORT_URL}: connection failed."),
        ("ftp://x", "KLAVIYO_API_URL is not a valid URL: its scheme must be https or http"),
        ("http://", "KLAVIYO_API_URL is not a valid URL: it names no host"),
        ("not a url", "KLAVIYO_API_URL is not a valid URL: it must start with https://"),
        ("http://[::1", "KLAVIYO_API_URL is not a valid URL: it cannot be read as a URL"),
    ],
)
def test_a_failed_check_ends_the_command_with_one_line_and_exit_1_without_traceback(url, said):
    environment = {**os.environ, "KLAVIYO_API_KEY": "pk_secret_1234", "KLAVIYO_API_URL": url}

    finished = subprocess.run(
        [sys.executable, "manage.py", "klaviyo", "check"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert finished.returncode == 1
    assert finished.stdout == ""
    lines = [line for line in finished.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"CommandError: {said}"), lines
    assert "pk_secret_1234" not in finished.stderr


def test_the_accounts_rate_class_is_klaviyo_s_one_a_second_and_fifteen_a_minute():
    assert KLAVIYO_RATE_LIMITS["accounts"] == REAL_LIMITS["accounts"] == (1, 15)
