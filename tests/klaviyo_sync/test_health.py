import re
from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from backinstock.models import Subscription
from klaviyo_sync.accounts import current_account
from klaviyo_sync.models import CatalogObjectKind, CatalogSyncRun, SentCatalogObject
from tests.factories import SubscriptionFactory
from tests.sandbox import API_KEY, klaviyo_sandbox_fixture  # noqa: F401

INDEX = reverse("admin:index")
CHECK = reverse("admin:klaviyo_sync_integrationsettings_check_connection")


def _row(html: str, row_id: str) -> str:
    match = re.search(rf'<tr class="([^"]*)" id="{row_id}">(.*?)</tr>', html, re.DOTALL)
    assert match, f"no row {row_id}"
    return match.group(1) + "|" + " ".join(match.group(2).split())


def _run(*, state: str, started: timedelta, failed: int = 0) -> CatalogSyncRun:
    run = CatalogSyncRun.objects.create(full=True, state=state, total=10, failed=failed)
    CatalogSyncRun.objects.filter(pk=run.pk).update(started_at=timezone.now() - started)
    return run


def test_the_panel_counts_pending_subscriptions_and_tells_the_oldest_s_age(admin_client, db):
    SubscriptionFactory()
    old = SubscriptionFactory()
    Subscription.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(hours=2))

    row = _row(admin_client.get(INDEX).content.decode(), "health-pending")

    assert ">2</a>" in row
    assert "the oldest waiting 2 hours" in row
    assert row.startswith("health-alarm|")  # two hours: the worker is not getting through


def test_recent_pending_subscriptions_do_not_stand_out(admin_client, db):
    SubscriptionFactory()

    row = _row(admin_client.get(INDEX).content.decode(), "health-pending")

    assert row.startswith("|") and ">1</a>" in row


def test_failed_subscriptions_stand_out_with_a_link_to_them(admin_client, db):
    SubscriptionFactory(status="failed")

    row = _row(admin_client.get(INDEX).content.decode(), "health-failed")

    assert row.startswith("health-alarm|")
    assert "status__exact=failed" in row and ">1</a>" in row


@pytest.mark.parametrize(
    ("state", "started", "alarming"),
    [
        ("completed", timedelta(hours=1), False),
        ("failed", timedelta(hours=1), True),
        ("completed", timedelta(hours=13), True),  # two reconciliation intervals of 6 h passed
    ],
)
def test_the_last_full_sync_shows_its_state_and_stands_out_when_failed_or_stale(
    admin_client, db, state, started, alarming
):
    run = _run(state=state, started=started, failed=3)

    row = _row(admin_client.get(INDEX).content.decode(), "health-sync")

    assert row.startswith("health-alarm|") is alarming
    assert reverse("admin:klaviyo_sync_catalogsyncrun_change", args=[run.pk]) in row
    assert "3 failed" in row


def test_no_full_sync_ever_stands_out_and_says_what_to_do(admin_client, db):
    row = _row(admin_client.get(INDEX).content.decode(), "health-sync")

    assert row.startswith("health-alarm|") and "never run" in row


def test_the_panel_shows_when_a_stock_figure_was_last_sent(admin_client, db):
    sent_at = timezone.now() - timedelta(minutes=5)
    SentCatalogObject.objects.create(
        account=current_account(),
        kind=CatalogObjectKind.VARIANT,
        external_id="1_SE_00_2",
        inventory_quantity=12,
        sent_at=sent_at,
    )

    row = _row(admin_client.get(INDEX).content.decode(), "health-stock")

    assert timezone.localtime(sent_at).strftime("%Y-%m-%d %H:%M") in row


def test_the_connection_button_tells_the_account_the_key_belongs_to(
    admin_client, settings, klaviyo_sandbox
):
    settings.KLAVIYO_API_URL = klaviyo_sandbox.url
    settings.KLAVIYO_API_KEY = API_KEY
    settings.REDIS_URL = ""

    response = admin_client.post(CHECK)

    assert response.status_code == 302 and response["Location"] == INDEX
    [message] = get_messages(response.wsgi_request)
    assert message.level_tag == "success"
    assert "accepted the key: account Klaviyo sandbox" in str(message)


def test_the_connection_button_says_when_the_key_is_missing(admin_client, settings, db):
    settings.KLAVIYO_API_KEY = ""

    response = admin_client.post(CHECK)

    [message] = get_messages(response.wsgi_request)
    assert message.level_tag == "error"
    assert str(message).startswith("No Klaviyo API key")


def test_the_connection_button_says_when_the_url_is_invalid(admin_client, settings, db):
    settings.KLAVIYO_API_KEY = "pk_secret_1234"
    settings.KLAVIYO_API_URL = "ftp://x"

    response = admin_client.post(CHECK)

    [message] = get_messages(response.wsgi_request)
    assert message.level_tag == "error"
    assert str(message).startswith("KLAVIYO_API_URL is not a valid URL")
    assert "None" not in str(message) and "pk_secret_1234" not in str(message)


def test_the_connection_check_runs_only_on_a_post(admin_client, db):
    assert admin_client.get(CHECK).status_code == 405


def test_the_index_offers_the_connection_button_and_the_demand_report(admin_client, db):
    html = admin_client.get(INDEX).content.decode()

    assert 'id="health-check-connection"' in html
    assert reverse("backinstock-demand") in html


def test_a_worker_and_scheduler_that_never_beat_or_beat_long_ago_stand_out(admin_client, db):
    from operations.models import ProcessKind
    from operations.services import heartbeat_record

    html = admin_client.get(INDEX).content.decode()
    assert _row(html, "health-worker").startswith("health-alarm|")
    assert "is a worker running" in _row(html, "health-worker")

    heartbeat_record(kind=ProcessKind.WORKER, name="celery@a", started_at=timezone.now())
    heartbeat_record(kind=ProcessKind.SCHEDULER, name="beat@a", started_at=timezone.now())
    html = admin_client.get(INDEX).content.decode()
    for row_id in ("health-worker", "health-scheduler"):
        row = _row(html, row_id)
        assert row.startswith("|") and "last heartbeat 0 s ago" in row

    from operations.models import Heartbeat

    Heartbeat.objects.filter(kind=ProcessKind.WORKER).update(
        beat_at=timezone.now() - timedelta(minutes=10)
    )
    html = admin_client.get(INDEX).content.decode()
    assert _row(html, "health-worker").startswith("health-alarm|")
    assert "stale" in _row(html, "health-worker")
