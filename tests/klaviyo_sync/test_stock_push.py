"""Stock figures to Klaviyo (flow 4), against the sandbox.

The demo catalog's rules: Sweden is served by Stockholm then Berlin, Germany by Berlin then
Stockholm, the US by New Jersey then Los Angeles. Size 23400 (HD-1-BLK-M) starts with
Berlin 3 and New Jersey 5: below the minimum of 10 everywhere.
"""

from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone

from backinstock.services import subscription_create
from klaviyo_sync.models import PendingStockChange, Restock
from klaviyo_sync.services.dispatch import subscriptions_dispatch
from klaviyo_sync.services.stock import (
    stock_changes_due,
    stock_changes_record,
    stock_figures_push,
)
from klaviyo_sync.services.subscriptions import subscription_push
from shop.models import AllocationRule, AllocationRuleWarehouse, DisplayItem, Warehouse
from shop.services import StockEntry, stock_entries_apply
from tests.factories import SizeFactory

pytestmark = pytest.mark.usefixtures("demo_catalog", "back_in_stock_on")

SE, DE, US = "12366_SE_00_23400", "12366_DE_00_23400", "12366_US_NY_23400"


@pytest.fixture
def subscribed(sandbox):
    """Ann waits for size M in Sweden, Germany and New York; Klaviyo has the three variants."""
    for country, state in (("SE", None), ("DE", None), ("US", "NY")):
        subscription_id = subscription_create(
            item="12366-23400",
            country_code=country,
            state_code=state,
            email="ann@example.com",
            language_code=None,
        ).subscription_id
        subscription_push(subscription_id=subscription_id)
    return sandbox


def figures(sandbox) -> dict[str, int]:
    variants = sandbox.snapshot()["variants"]
    return {key: variants[key]["inventory_quantity"] for key in (SE, DE, US)}


def set_stock(warehouse: str, physical: int, allocated: int = 0) -> None:
    stock_entries_apply(
        entries=[StockEntry("HD-1-BLK-M", warehouse, physical=physical, allocated=allocated)]
    )


def push(sandbox) -> None:
    stock_figures_push(size_ids=[23400])


def variant_update_jobs(sandbox) -> int:
    return sandbox.snapshot()["calls"].get("POST /api/catalog-variant-bulk-update-jobs", 0)


def test_a_restock_moves_exactly_the_variants_whose_locations_the_warehouse_serves(subscribed):
    assert figures(subscribed) == {SE: 0, DE: 0, US: 0}

    set_stock("Stockholm", 20, allocated=2)
    push(subscribed)

    # Sweden and Germany: Stockholm 18 + Berlin 3; the US is not served by Stockholm.
    assert figures(subscribed) == {SE: 21, DE: 21, US: 0}

    set_stock("New Jersey", 30)
    push(subscribed)
    assert figures(subscribed) == {SE: 21, DE: 21, US: 30}


def test_below_the_minimum_nothing_rises_and_nothing_is_sent(subscribed):
    set_stock("Stockholm", 6)  # Sweden 6, Germany 9: both under 10

    push(subscribed)

    assert figures(subscribed) == {SE: 0, DE: 0, US: 0}
    assert variant_update_jobs(subscribed) == 0


def test_falling_below_the_minimum_sends_zero_and_the_next_rise_is_a_rise_again(subscribed):
    set_stock("New Jersey", 15)
    push(subscribed)
    set_stock("New Jersey", 12)  # still above: the new figure is sent
    push(subscribed)
    assert figures(subscribed)[US] == 12

    set_stock("New Jersey", 4)
    push(subscribed)
    assert figures(subscribed)[US] == 0

    set_stock("New Jersey", 11)
    push(subscribed)
    assert figures(subscribed)[US] == 11
    restocks = list(Restock.objects.filter(variant__external_id=US).order_by("sent_at", "id"))
    assert [(r.previous_quantity, r.quantity) for r in restocks] == [(0, 15), (0, 11)]
    assert all(r.waiting_subscribers == 1 for r in restocks)


def test_unchanged_figures_are_not_sent_again(subscribed):
    set_stock("New Jersey", 15)
    push(subscribed)
    jobs = variant_update_jobs(subscribed)

    set_stock("Los Angeles", 0)  # a change that moves no figure
    push(subscribed)

    assert variant_update_jobs(subscribed) == jobs


def test_an_invalid_integration_batch_changes_nothing_and_sends_nothing(subscribed):
    with pytest.raises(Exception, match="unknown"):
        stock_entries_apply(
            entries=[
                StockEntry("HD-1-BLK-M", "New Jersey", physical=50),
                StockEntry("NO-SUCH-SKU", "New Jersey", physical=50),
            ]
        )
    assert not PendingStockChange.objects.exists()

    push(subscribed)

    assert figures(subscribed) == {SE: 0, DE: 0, US: 0}
    assert variant_update_jobs(subscribed) == 0


def test_a_changed_allocation_rule_is_repaired_by_recomputing_everything(subscribed):
    set_stock("Los Angeles", 40)
    push(subscribed)
    assert figures(subscribed)[SE] == 0

    # Sweden may now ship from Los Angeles too.
    AllocationRuleWarehouse.objects.create(
        allocation_rule=AllocationRule.objects.get(name="Nordics"),
        warehouse=Warehouse.objects.get(name="Los Angeles"),
        position=9,
    )
    stock_figures_push(size_ids=None)

    assert figures(subscribed)[SE] == 40 + 3  # Los Angeles and Berlin


def test_the_minimum_stock_level_decides_what_is_in_stock(subscribed, back_in_stock_on):
    set_stock("New Jersey", 7)
    push(subscribed)
    assert figures(subscribed)[US] == 0

    back_in_stock_on.minimum_stock_level = 5
    back_in_stock_on.save()
    stock_figures_push(size_ids=None)

    assert figures(subscribed)[US] == 7


def test_many_changes_go_out_in_jobs_of_up_to_100_variants(sandbox, back_in_stock_on, settings):
    settings.SUBSCRIBE_RATE_PER_EMAIL = "none"  # one shopper waits for 150 sizes
    variant = DisplayItem.objects.get(id=12400).variant
    sizes = [SizeFactory(variant=variant) for _ in range(150)]
    for size in sizes:
        subscription_create(
            item=f"12400-{size.id}",
            country_code="SE",
            state_code=None,
            email="ann@example.com",
            language_code=None,
        )
    # One batch, as the worker's dispatcher sends them (150 one-at-a-time pushes would each
    # wait for a profile job, at Klaviyo's 150 job reads a minute).
    assert subscriptions_dispatch(limit=200).outcomes["subscribed"] == 150
    stock_entries_apply(entries=[StockEntry(size.sku, "Stockholm", physical=30) for size in sizes])
    stock_changes_record(size_ids=[s.id for s in sizes])

    result = stock_figures_push(size_ids=[s.id for s in sizes])

    assert (result.variants_changed, result.jobs) == (150, 2)
    variants = sandbox.snapshot()["variants"]
    assert {variants[f"12400_SE_00_{s.id}"]["inventory_quantity"] for s in sizes} == {30}


def patch_now(moment):
    return mock.patch("django.utils.timezone.now", return_value=moment)


def notes_made(*seconds_ago: float) -> None:
    now = timezone.now()
    PendingStockChange.objects.bulk_create(
        PendingStockChange(
            size_id=size_id,
            created_at=now - timedelta(seconds=ago),
            first_noted_at=now - timedelta(seconds=ago),
        )
        for size_id, ago in enumerate(seconds_ago, start=1)
    )


def due() -> bool:
    return stock_changes_due(quiet=timedelta(seconds=0.5), window=timedelta(seconds=2))


def test_changes_that_stopped_coming_are_due_after_the_quiet_time():
    notes_made(0.6)

    assert due()


def test_changes_still_coming_wait_until_the_quiet_time_has_passed():
    notes_made(0.6, 0.3)

    assert not due()


def test_a_steady_stream_of_changes_is_due_once_its_oldest_is_the_window_old():
    notes_made(*(0.2 * n for n in range(10)))  # every 0.2 s for the last 1.8 s
    assert not due()

    PendingStockChange.objects.all().delete()
    notes_made(*(0.2 * n for n in range(11)))  # the oldest 2 s ago

    assert due()


def test_one_size_changing_without_pause_is_still_pushed_once_first_noted_the_window_ago():
    """An order every 0.3 s on a hot size re-notes it each time; the window still bounds it."""
    started = timezone.now()
    with patch_now(started - timedelta(seconds=2.1)):
        stock_changes_record(size_ids=[1])
    for ago in (1.8, 1.5, 1.2, 0.9, 0.6, 0.3, 0.0):
        with patch_now(started - timedelta(seconds=ago)):
            stock_changes_record(size_ids=[1])

    assert due()


def test_no_notes_are_never_due():
    assert not due()
