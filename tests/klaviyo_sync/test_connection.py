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


def test_an_unreachable_klaviyo_ends_the_command_with_one_line_and_exit_1_without_traceback():
    environment = {
        **os.environ,
        "KLAVIYO_API_KEY": "pk_secret_1234",
        "KLAVIYO_API_URL": CLOSED_PORT_URL,
    }

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
    assert lines == [
        f"CommandError: Klaviyo cannot be reached at {CLOSED_PORT_URL}: connection failed."
    ]
    assert "pk_secret_1234" not in finished.stderr


def test_the_accounts_rate_class_is_klaviyo_s_one_a_second_and_fifteen_a_minute():
    assert KLAVIYO_RATE_LIMITS["accounts"] == REAL_LIMITS["accounts"] == (1, 15)
