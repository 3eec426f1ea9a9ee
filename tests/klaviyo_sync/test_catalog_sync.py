"""Catalog sync against the Klaviyo sandbox (flow 3)."""

import json
from decimal import Decimal

import pytest
import requests
from django.core.management import CommandError, call_command

from klaviyo_sync.models import CatalogSyncRun, IntegrationSettings, SentCatalogObject
from klaviyo_sync.selectors import integration_settings_get
from klaviyo_sync.services.catalog import catalog_changes_record, catalog_sync_run
from shop.models import DisplayItem, Price
from tests.sandbox import API_HEADERS, running_sandbox

pytestmark = pytest.mark.usefixtures("demo_catalog")

PUBLISHED = {"12366", "12367", "12400", "12500"}  # 12501 is not published in the demo catalog


def item_bulk_calls(sandbox) -> int:
    calls = sandbox.snapshot()["calls"]
    return sum(n for key, n in calls.items() if key.startswith("POST /api/catalog-item-bulk"))


def test_a_full_sync_sends_every_published_display_item_and_unlocks_back_in_stock(sandbox):
    settings_record = integration_settings_get()
    settings_record.product_url_template = "https://shop.example.com/p/{display_uri}"
    settings_record.base_currency = "SEK"
    settings_record.save()

    run = catalog_sync_run(full=True)

    state = sandbox.snapshot()
    assert run.state == "completed"
    assert (run.total, run.done, run.failed) == (5, 4, 0)
    assert set(state["items"]) == PUBLISHED
    assert state["categories"] == {}  # the back-in-stock flow's, created by its first push
    hoodie = state["items"]["12366"]
    assert hoodie["title"] == "Hoodie"
    assert hoodie["url"] == "https://shop.example.com/p/hoodie-black"
    assert hoodie["price"] == 999.0
    assert hoodie["published"] is True
    metadata = hoodie["custom_metadata"]
    assert json.loads(metadata["ProductName"])["sv"] == "Luvtröja"
    assert json.loads(metadata["ProductUrl"])["sv"] == "https://shop.example.com/p/luvtroja-svart"
    assert json.loads(metadata["Price"]) == {"EUR": 89.0, "SEK": 999.0, "USD": 99.0}
    record = IntegrationSettings.objects.get()
    assert record.catalog_sync_state == "completed"
    assert record.first_full_sync_completed_at is not None


def test_a_second_sync_with_nothing_changed_sends_nothing(sandbox):
    catalog_sync_run(full=True)
    calls_before = item_bulk_calls(sandbox)

    run = catalog_sync_run(full=True)

    assert item_bulk_calls(sandbox) == calls_before
    # The calls are the read-back of Klaviyo's catalog: one page each of items, variants and
    # categories.
    assert (run.done, run.unchanged, run.calls) == (0, 5, 3)


def test_an_incremental_sync_sends_only_the_changed_item_as_an_update(sandbox):
    catalog_sync_run(full=True)
    Price.objects.filter(display_item_id=12400, pricelist__currency="USD").update(
        amount=Decimal("39.00")
    )
    catalog_changes_record(display_item_ids=[12400])

    run = catalog_sync_run(full=False)

    state = sandbox.snapshot()
    assert (run.total, run.done) == (1, 1)
    assert json.loads(state["items"]["12400"]["custom_metadata"]["Price"])["USD"] == 39.0
    assert state["calls"]["POST /api/catalog-item-bulk-update-jobs"] == 1
    assert not CatalogSyncRun.objects.filter(full=False, state="failed").exists()


def test_unpublished_and_deleted_display_items_become_unpublished_in_klaviyo(sandbox):
    catalog_sync_run(full=True)
    DisplayItem.objects.filter(id=12367).update(published=False)
    DisplayItem.objects.filter(id=12500).delete()

    catalog_sync_run(full=True)

    items = sandbox.snapshot()["items"]
    assert items["12367"]["published"] is False
    assert items["12500"]["published"] is False
    assert items["12366"]["published"] is True


def test_an_item_klaviyo_already_has_is_updated_instead(sandbox):
    requests.post(
        f"{sandbox.url}/api/catalog-items",
        headers=API_HEADERS,
        json={
            "data": {
                "type": "catalog-item",
                "attributes": {
                    "external_id": "12366",
                    "title": "Old title",
                    "description": "",
                    "url": "u",
                },
            }
        },
        timeout=5,
    ).raise_for_status()

    run = catalog_sync_run(full=True)

    assert run.failed == 0
    assert sandbox.snapshot()["items"]["12366"]["title"] == "Hoodie"


def test_element_errors_are_recorded_with_klaviyos_detail_and_fail_the_run(
    sandbox, monkeypatch, capsys
):
    from klaviyo_sync.services import catalog, jobs

    klaviyos_answer = jobs.job_outcome_from

    def refuse_12400(**kwargs):
        outcome = klaviyos_answer(**kwargs)
        if "12400" in outcome.succeeded:
            outcome.succeeded.remove("12400")
            outcome.failed["12400"] = "`price` must be a number."
        return outcome

    monkeypatch.setattr(jobs, "job_outcome_from", refuse_12400)

    with pytest.raises(CommandError, match="did not complete"):
        call_command("klaviyo", "sync-catalog", "--full", "--wait")

    run = CatalogSyncRun.objects.get()
    assert run.state == "failed"
    assert (run.total, run.done, run.unchanged, run.failed, run.not_sent) == (5, 3, 1, 1, 0)
    [failure] = run.failures.all()
    assert (failure.external_id, failure.detail) == ("12400", "`price` must be a number.")
    assert "must be a number" in SentCatalogObject.objects.get(external_id="12400").last_error
    assert "5 items: 3 sent, 1 unchanged, 1 failed, 0 not sent" in capsys.readouterr().out
    assert IntegrationSettings.objects.get().first_full_sync_completed_at is None
    assert catalog.catalog_sync_progress_percent(run) == 100


def test_an_item_deleted_in_klaviyo_is_created_again_by_the_next_full_sync(sandbox):
    catalog_sync_run(full=True)
    requests.delete(
        f"{sandbox.url}/api/catalog-items/$custom:::$default:::12500",
        headers=API_HEADERS,
        timeout=5,
    ).raise_for_status()

    run = catalog_sync_run(full=True)

    assert run.state == "completed"
    assert run.missing_repaired == 1
    assert (run.total, run.done, run.unchanged, run.failed, run.not_sent) == (5, 1, 4, 0, 0)
    assert set(sandbox.snapshot()["items"]) == PUBLISHED


def test_an_update_answered_does_not_exist_is_sent_again_as_a_create(sandbox):
    catalog_sync_run(full=True)
    requests.delete(
        f"{sandbox.url}/api/catalog-items/$custom:::$default:::12400",
        headers=API_HEADERS,
        timeout=5,
    ).raise_for_status()
    Price.objects.filter(display_item_id=12400).update(amount=Decimal("1.00"))
    catalog_changes_record(display_item_ids=[12400])

    run = catalog_sync_run(full=False)  # no read-back: Klaviyo's answer alone repairs it

    assert (run.state, run.total, run.done, run.failed) == ("completed", 1, 1, 0)
    assert sandbox.snapshot()["items"]["12400"]["price"] == 1.0


def test_another_klaviyo_account_starts_from_nothing(sandbox, settings):
    catalog_sync_run(full=True)
    with running_sandbox() as other:
        settings.KLAVIYO_API_URL = other.url

        run = catalog_sync_run(full=True, read_back=False)

        assert (run.done, run.unchanged) == (4, 1)
        assert set(other.snapshot()["items"]) == PUBLISHED


def test_against_an_empty_klaviyo_every_count_adds_up_and_nothing_is_lost(sandbox):
    catalog_sync_run(full=True)
    sandbox.reset()

    run = catalog_sync_run(full=True)

    assert run.state == "completed"
    assert run.done + run.unchanged + run.failed + run.not_sent == run.total == 5
    assert (run.done, run.failed) == (4, 0)
    assert set(sandbox.snapshot()["items"]) == PUBLISHED


def test_server_errors_for_a_while_are_retried_and_the_sync_completes(sandbox):
    sandbox.add_fault("error", status=503, count=3, path_prefix="/api/catalog-item-bulk")

    run = catalog_sync_run(full=True)

    assert run.state == "completed"
    assert set(sandbox.snapshot()["items"]) == PUBLISHED


def test_a_rejected_key_fails_the_run_with_the_reason(sandbox, settings):
    settings.KLAVIYO_API_KEY = "not-a-private-key"

    with pytest.raises(Exception, match="401"):
        catalog_sync_run(full=True)

    run = CatalogSyncRun.objects.get()
    assert run.state == "failed"
    assert "401" in run.error
    assert "not-a-private-key" not in run.error
    assert IntegrationSettings.objects.get().first_full_sync_completed_at is None


def test_back_in_stock_can_be_switched_on_only_after_the_first_full_sync(sandbox):
    with pytest.raises(CommandError, match="first full catalog sync"):
        call_command("klaviyo", "configure", "--back-in-stock", "on")

    call_command("klaviyo", "sync-catalog", "--full", "--wait")
    call_command("klaviyo", "configure", "--back-in-stock", "on", "--minimum-stock-level", "5")

    record = IntegrationSettings.objects.get()
    assert record.back_in_stock_enabled is True
    assert record.minimum_stock_level == 5


def test_status_prints_the_contracts_json(sandbox, capsys):
    call_command("klaviyo", "sync-catalog", "--full", "--wait")
    capsys.readouterr()

    call_command("klaviyo", "status")

    status = json.loads(capsys.readouterr().out)
    assert status["catalogSync"]["enabled"] is False
    assert status["catalogSync"]["state"] == "completed"
    assert status["catalogSync"]["completedAt"]
    assert status["backInStock"] == {"enabled": False, "minimumStockLevel": 10}
    assert status["klaviyo"]["apiKey"] == "present"
    assert "pk_" not in json.dumps(status)
