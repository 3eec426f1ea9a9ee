"""Secrets stay out of logs, errors, the admin and ``klaviyo status`` (issue 9.4).

The settings are those of the reports: a key read from a secret file with its newline kept, and
a base URL carrying ``user:password@``. The subscription push, the catalog sync and the status
command run against the sandbox; every place a person could read is then searched for the
secrets.
"""

import io
import logging
from urllib.parse import urlsplit

import pytest
import requests
import responses
from django.core.management import call_command
from django.core.management.base import CommandError, SystemCheckError
from django.urls import reverse

from backinstock.models import Subscription
from backinstock.services import subscription_create
from klaviyo_sync.checks import api_key_problem
from klaviyo_sync.client import (
    KlaviyoClient,
    KlaviyoPermanentError,
    KlaviyoRetryableError,
    url_without_credentials,
)
from klaviyo_sync.tasks import push_subscription
from tests.config.test_settings import run_python

KEY_SECRET = "pk_leak-me-0123456789"
URL_PASSWORD = "pa55w0rd-leak-me"

pytestmark = pytest.mark.usefixtures("demo_catalog", "back_in_stock_on")


def test_the_api_key_is_stripped_when_the_settings_read_it():
    result = run_python(
        "import django; django.setup(); from django.conf import settings; "
        "print(repr(settings.KLAVIYO_API_KEY))",
        DJANGO_SETTINGS_MODULE="config.settings.test",
        KLAVIYO_API_KEY=f"  {KEY_SECRET}\n",
    )
    assert result.stdout.strip() == repr(KEY_SECRET), result.stderr


@pytest.mark.parametrize(
    "key", [f"{KEY_SECRET}\nX", f"pk_a b{KEY_SECRET}", f"{KEY_SECRET}\x07", "pk_é"]
)
def test_a_key_with_whitespace_control_or_non_ascii_characters_inside_is_a_check_error(
    settings, key
):
    settings.KLAVIYO_API_KEY = key

    with pytest.raises(SystemCheckError) as refused:
        call_command("check")

    assert "klaviyo_sync.E001" in str(refused.value)
    assert key not in str(refused.value)
    assert api_key_problem(KEY_SECRET) is None


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"https://user:{URL_PASSWORD}@a.klaviyo.com:8443/x", "https://a.klaviyo.com:8443/x"),
        (f"https://{URL_PASSWORD}@a.klaviyo.com", "https://a.klaviyo.com"),
        ("https://a.klaviyo.com", "https://a.klaviyo.com"),
        (f"https://user:{URL_PASSWORD}@a.klaviyo.com:notaport/", "<invalid URL>"),
    ],
)
def test_urls_are_shown_without_credentials(url, shown):
    assert url_without_credentials(url) == shown


def _subscribe() -> int:
    return subscription_create(
        item="12366-23400",
        country_code="SE",
        state_code=None,
        email="ann@example.com",
        language_code=None,
    ).subscription_id


def _client(*, base_url="https://a.klaviyo.test", api_key=KEY_SECRET) -> KlaviyoClient:
    return KlaviyoClient(base_url=base_url, api_key=api_key, revision="r", timeout=(1, 1))


def _everything_said(exc: BaseException) -> str:
    import traceback

    return "".join(traceback.format_exception(exc)) + repr(exc)


@responses.activate
@pytest.mark.parametrize(
    ("raised", "kind"),
    [
        (
            requests.exceptions.InvalidHeader(f"Invalid header value {KEY_SECRET!r}"),
            KlaviyoPermanentError,
        ),
        (requests.exceptions.InvalidURL(f"bad https://u:{URL_PASSWORD}@x"), KlaviyoPermanentError),
        (requests.exceptions.ChunkedEncodingError(KEY_SECRET), KlaviyoRetryableError),
        (requests.exceptions.TooManyRedirects(URL_PASSWORD), KlaviyoPermanentError),
        (ValueError(f"Invalid header value {KEY_SECRET!r}"), KlaviyoPermanentError),
        (requests.ConnectionError(f"https://u:{URL_PASSWORD}@x refused"), KlaviyoRetryableError),
    ],
)
def test_every_requests_exception_becomes_a_typed_error_without_the_secrets(raised, kind):
    responses.add(responses.POST, "https://a.klaviyo.test/api/profile-import", body=raised)

    with pytest.raises(kind) as caught:
        _client().profile_import(body={})

    said = _everything_said(caught.value)
    assert KEY_SECRET not in said and URL_PASSWORD not in said


def test_a_key_with_a_newline_inside_fails_typed_and_the_key_is_not_in_the_error():
    with pytest.raises(KlaviyoPermanentError) as caught:
        _client(api_key=f"{KEY_SECRET}\n", base_url="http://127.0.0.1:9").profile_import(body={})

    assert "InvalidHeader" in str(caught.value)
    assert KEY_SECRET not in _everything_said(caught.value)


def test_a_password_in_the_url_is_not_in_a_connection_error():
    with pytest.raises(KlaviyoRetryableError) as caught:
        _client(base_url=f"http://user:{URL_PASSWORD}@127.0.0.1:9").profile_import(body={})

    assert "http://127.0.0.1:9/api/profile-import: connection failed" in str(caught.value)
    assert URL_PASSWORD not in _everything_said(caught.value)


@pytest.mark.parametrize("leak", ["key", "url"])
def test_a_push_and_a_sync_with_leaky_settings_show_the_secrets_nowhere(
    sandbox, settings, admin_client, caplog, leak
):
    if leak == "key":  # as if read without stripping and started without manage.py check
        settings.KLAVIYO_API_KEY = f"{KEY_SECRET}\n"
    else:  # requests sends the URL's credentials as Basic auth: the sandbox answers 401
        settings.KLAVIYO_API_KEY = KEY_SECRET
        address = urlsplit(sandbox.url).netloc
        settings.KLAVIYO_API_URL = f"http://user:{URL_PASSWORD}@{address}"
    caplog.set_level(logging.DEBUG)
    subscription_id = _subscribe()

    # The URL's credentials replace the key: Klaviyo refuses the key and the subscription waits.
    expected = "failed" if leak == "key" else "key-refused"
    assert push_subscription.apply(args=[subscription_id]).get() == expected
    with pytest.raises(CommandError) as sync_failed:
        call_command("klaviyo", "sync-catalog", "--full", "--wait", stdout=io.StringIO())
    status = io.StringIO()
    call_command("klaviyo", "status", stdout=status)

    subscription = Subscription.objects.get(id=subscription_id)
    assert subscription.last_error
    pages = [
        admin_client.get(reverse("admin:backinstock_subscription_change", args=[subscription_id])),
        admin_client.get(reverse("admin:backinstock_subscription_changelist")),
        admin_client.get(reverse("admin:klaviyo_sync_integrationsettings_change", args=[1])),
        admin_client.get(reverse("admin:klaviyo_sync_catalogsyncrun_changelist")),
        admin_client.get(reverse("admin:klaviyo_sync_sentcatalogobject_changelist")),
    ]
    assert all(page.status_code == 200 for page in pages)
    everything = "\n".join(
        [
            subscription.last_error,
            str(sync_failed.value),
            status.getvalue(),
            caplog.text,
            *(page.content.decode() for page in pages),
        ]
    )
    assert KEY_SECRET not in everything
    assert URL_PASSWORD not in everything


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_with_a_password_in_the_url_and_a_newline_after_the_key_logs_neither(
    sandbox, tmp_path
):
    from django.db import connection

    from tests.sandbox import API_KEY
    from tests.worker import broker_purge, running_worker, wait_until

    address = urlsplit(sandbox.url).netloc
    leaky = {
        "KLAVIYO_API_URL": f"http://user:{URL_PASSWORD}@{address}",
        "KLAVIYO_API_KEY": f"{API_KEY}\n",
    }
    broker_purge()
    subscription_id = _subscribe()

    def refused() -> bool:  # the key refused: the subscription waits, with the reason
        connection.close()  # see the worker's commits
        return "401" in Subscription.objects.get(id=subscription_id).last_error

    log_path = tmp_path / "worker.log"
    with running_worker(log_path=log_path, loglevel="debug", beat=True, **leaky):
        wait_until(refused, timeout=60, message="the push was not refused")

    log = log_path.read_text(encoding="utf-8", errors="replace")
    last_error = Subscription.objects.get(id=subscription_id).last_error
    assert "401" in last_error and address in last_error
    assert URL_PASSWORD not in log + last_error


def test_credentials_in_the_klaviyo_url_are_a_check_error_that_does_not_show_them(settings):
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    settings.KLAVIYO_API_URL = f"https://user:{URL_PASSWORD}@a.klaviyo.com"

    with pytest.raises(SystemCheckError) as refused:
        call_command("check")

    assert "klaviyo_sync.E002" in str(refused.value)
    assert URL_PASSWORD not in str(refused.value)
