"""What Klaviyo holds stays true: each flow owns its objects, products no longer sold hold 0,
objects Klaviyo lost are created again, prices are never invented (issue: "What Klaviyo holds
stays true"). Against the sandbox, on the demo catalog."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from backinstock.models import Subscription
from backinstock.services import subscription_create, subscriptions_retry
from config.api.errors import InvalidInput
from klaviyo_sync.models import Restock
from klaviyo_sync.services.back_in_stock_catalog import NotSoldThere
from klaviyo_sync.services.catalog import catalog_sync_run
from klaviyo_sync.services.stock import stock_figures_push
from klaviyo_sync.services.subscriptions import subscription_push
from klaviyo_sync.tasks import push_subscription
from shop.models import DisplayItem, Price
from shop.services import StockEntry, stock_entries_apply
from tests.sandbox import running_sandbox

pytestmark = pytest.mark.usefixtures("demo_catalog", "back_in_stock_on")


def subscribe(item="12400-23500", country="SE", state=None, email="ann@example.com") -> int:
    return subscription_create(
        item=item, country_code=country, state_code=state, email=email, language_code=None
    ).subscription_id


def subscribed(item="12400-23500", country="SE", state=None, email="ann@example.com") -> int:
    subscription_id = subscribe(item=item, country=country, state=state, email=email)
    push_subscription.apply(args=[subscription_id])
    assert Subscription.objects.get(id=subscription_id).status == "subscribed"
    return subscription_id


def lose(sandbox, kind: str, external_id: str) -> None:
    """As a person deleting the object in Klaviyo's interface would."""
    plural = {"item": "items", "variant": "variants", "category": "categories"}[kind]
    sandbox.catalog_delete(**{plural: [external_id]})


# --- Fault 1: each flow owns its objects ----------------------------------------------------


def test_two_full_syncs_in_a_row_leave_every_virtual_item_published(sandbox):
    catalog_sync_run(full=True)
    subscribed()

    catalog_sync_run(full=True)
    catalog_sync_run(full=True)

    state = sandbox.snapshot()
    assert state["items"]["12400_SE_00"]["published"] is True
    assert state["variants"]["12400_SE_00_23500"]["published"] is True
    assert state["categories"]["backinstock"]["name"] == "BackInStock automation"
    assert state["items"]["12400"]["published"] is True


# --- Fault 2: a display item no longer sold ------------------------------------------------------


def restock_stockholm(physical: int) -> None:
    stock_entries_apply(entries=[StockEntry("HD-1-BLK-M", "Stockholm", physical=physical)])


def test_an_unpublished_display_item_holds_0_records_no_restock_and_is_restored_when_published(
    sandbox,
):
    subscribed(item="12366-23400")
    DisplayItem.objects.filter(id=12366).update(published=False)
    restock_stockholm(40)

    stock_figures_push(size_ids=[23400])

    state = sandbox.snapshot()
    assert state["variants"]["12366_SE_00_23400"]["inventory_quantity"] == 0
    assert state["items"]["12366_SE_00"]["published"] is False
    assert not Restock.objects.exists()

    DisplayItem.objects.filter(id=12366).update(published=True)
    stock_figures_push(size_ids=[23400])

    state = sandbox.snapshot()
    assert state["variants"]["12366_SE_00_23400"]["inventory_quantity"] == 43
    assert state["items"]["12366_SE_00"]["published"] is True
    assert Restock.objects.get().quantity == 43


def test_unpublishing_through_the_catalog_import_zeroes_the_figures_without_a_push_by_hand(
    sandbox, tmp_path, django_capture_on_commit_callbacks
):
    import json

    from tests.conftest import DEMO_CATALOG

    subscribed(item="12366-23400")
    catalog = json.loads(DEMO_CATALOG.read_text())
    hoodie = catalog["products"][0]["variants"][0]
    assert hoodie["displayItemId"] == 12366
    hoodie["published"] = False
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(catalog))

    with django_capture_on_commit_callbacks(execute=True):
        call_command("import_catalog", str(path), "--no-progress", verbosity=0)
    with django_capture_on_commit_callbacks(execute=True):
        restock_stockholm(40)
    stock_figures_push(size_ids=None)

    state = sandbox.snapshot()
    assert state["variants"]["12366_SE_00_23400"]["inventory_quantity"] == 0
    assert state["items"]["12366_SE_00"]["published"] is False
    assert not Restock.objects.exists()


def test_a_virtual_item_whose_display_item_was_deleted_is_unpublished(sandbox):
    subscribed(item="12500-23600")

    DisplayItem.objects.filter(id=12500).delete()
    stock_figures_push(size_ids=None)

    assert sandbox.snapshot()["items"]["12500_SE_00"]["published"] is False


# --- Fault 3: objects Klaviyo lost ------------------------------------------------------------


def test_a_new_subscription_for_a_variant_klaviyo_lost_creates_it_again_and_arrives(sandbox):
    subscribed(item="12400-23501", country="DE")
    lose(sandbox, "variant", "12400_DE_00_23501")

    subscription_id = subscribed(item="12400-23501", country="DE", email="bob@example.com")

    state = sandbox.snapshot()
    assert "12400_DE_00_23501" in state["variants"]
    emails = [s["email"] for s in state["back_in_stock_subscriptions"]]
    assert emails.count("bob@example.com") == 1
    assert Subscription.objects.get(id=subscription_id).last_error == ""


def test_the_whole_chain_lost_category_item_variant_is_created_again(sandbox):
    subscribed()
    sandbox.reset()

    subscribed(email="bob@example.com")

    state = sandbox.snapshot()
    assert "backinstock" in state["categories"]
    assert "12400_SE_00" in state["items"]
    assert "12400_SE_00_23500" in state["variants"]


def test_a_failed_subscription_retried_by_an_operator_repairs_and_arrives(sandbox, monkeypatch):
    subscription_id = subscribe()
    Subscription.objects.filter(id=subscription_id).update(
        status="failed", last_error="Catalog variant `12400_SE_00_23500` does not exist."
    )

    subscriptions_retry(subscription_ids=[subscription_id])
    push_subscription.apply(args=[subscription_id])

    assert Subscription.objects.get(id=subscription_id).status == "subscribed"


def test_another_account_starts_from_nothing_and_new_subscriptions_arrive(sandbox, settings):
    subscribed()
    with running_sandbox() as other:
        settings.KLAVIYO_API_URL = other.url

        subscribed(email="bob@example.com")

        state = other.snapshot()
        assert "12400_SE_00_23500" in state["variants"]
        assert [s["email"] for s in state["back_in_stock_subscriptions"]] == ["bob@example.com"]


def test_one_reconciliation_puts_back_what_klaviyo_lost_and_pending_subscriptions_arrive(
    sandbox,
):
    catalog_sync_run(full=True)
    subscribed(item="12366-23400")
    waiting = subscribe(item="12400-23501", country="DE", email="bob@example.com")
    sandbox.reset()  # a sandbox that starts empty while the database remembers

    run = catalog_sync_run(full=True)
    push_subscription.apply(args=[waiting])

    state = sandbox.snapshot()
    assert run.state == "completed"
    assert {"12366", "12367", "12400", "12500"} <= set(state["items"])
    assert "12366_SE_00_23400" in state["variants"]  # re-created for the subscribed shopper
    assert "12400_DE_00_23501" in state["variants"]
    assert Subscription.objects.get(id=waiting).status == "subscribed"


def test_subscriptions_klaviyo_lost_with_their_variant_are_sent_again_after_a_reconciliation(
    sandbox,
):
    catalog_sync_run(full=True)
    ann = subscribed(item="12366-23400")
    sandbox.reset()  # the sandbox starts empty; the database says Ann is subscribed

    catalog_sync_run(full=True)

    assert Subscription.objects.get(id=ann).status == "pending"
    push_subscription.apply(args=[ann])
    state = sandbox.snapshot()
    assert [s["email"] for s in state["back_in_stock_subscriptions"]] == ["ann@example.com"]
    assert state["profiles"]["ann@example.com"]["properties"]["Language"] == "sv"


# --- Fault 4: no invented price -------------------------------------------------------------------


def test_an_item_without_a_price_in_the_ship_to_pricelist_is_refused_on_item(sandbox):
    Price.objects.filter(display_item_id=12400, pricelist__currency="EUR").delete()

    with pytest.raises(InvalidInput) as refused:
        subscribe(item="12400-23500", country="DE")

    assert refused.value.errors == {"item": "item 12400-23500 is not sold in DE"}
    assert not Subscription.objects.exists()


def test_a_price_removed_after_subscribing_fails_the_push_instead_of_inventing_one(sandbox):
    subscription_id = subscribe(item="12400-23500", country="DE")
    Price.objects.filter(display_item_id=12400, pricelist__currency="EUR").delete()

    with pytest.raises(NotSoldThere):
        subscription_push(subscription_id=subscription_id)

    assert "12400_DE_00_23500" not in sandbox.snapshot()["variants"]


def test_sync_catalog_wait_exits_non_zero_when_klaviyo_refuses_the_key(sandbox, settings):
    settings.KLAVIYO_API_KEY = "not-a-key"

    with pytest.raises(CommandError):
        call_command("klaviyo", "sync-catalog", "--full", "--wait")


# --- Fault 7: state more than one process reads -------------------------------------------------


def test_a_stock_change_noted_by_one_process_is_pushed_by_another_within_its_window(
    sandbox, settings, django_capture_on_commit_callbacks
):
    """No marker in a process's own memory decides whether a push is queued (the demo has no
    Redis): the note is in the database, and the next tick of any worker pushes it once the
    coalescing window is over."""
    from django.core.cache import cache

    from klaviyo_sync import tasks

    subscribed(item="12366-23400")
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    settings.KLAVIYO_STOCK_COALESCE_SECONDS = 0
    with django_capture_on_commit_callbacks(execute=True):
        restock_stockholm(40)  # the web process notes the change
    cache.clear()  # the worker's own cache knows nothing of it

    assert tasks.push_stock_changes.apply().get().startswith("1 changed")

    assert sandbox.snapshot()["variants"]["12366_SE_00_23400"]["inventory_quantity"] == 43


def test_only_one_catalog_sync_runs_at_a_time_across_processes(sandbox):
    from klaviyo_sync.services.catalog import SYNC_LEASE, CatalogSyncBusy
    from klaviyo_sync.services.leases import lease_acquire, lease_release

    holder = lease_acquire(name=SYNC_LEASE, seconds=60)  # another process's running sync
    with pytest.raises(CatalogSyncBusy):
        catalog_sync_run(full=True)
    lease_release(name=SYNC_LEASE, holder=holder)

    assert catalog_sync_run(full=True).state == "completed"


def test_a_stock_push_that_finds_the_variant_lost_creates_it_and_sends_its_subscribers_again(
    sandbox,
):
    ann = subscribed(item="12366-23400")
    lose(sandbox, "variant", "12366_SE_00_23400")
    restock_stockholm(40)

    stock_figures_push(size_ids=[23400])

    assert sandbox.snapshot()["variants"]["12366_SE_00_23400"]["inventory_quantity"] == 43
    assert Subscription.objects.get(id=ann).status == "pending"
    push_subscription.apply(args=[ann])
    emails = [s["email"] for s in sandbox.snapshot()["back_in_stock_subscriptions"]]
    assert emails == ["ann@example.com", "ann@example.com"]  # before the loss, and again
