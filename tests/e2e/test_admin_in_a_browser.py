"""The admin and the API docs in a real browser: headless Chromium driven by Playwright.

Debian's ``chromium`` is used as it is (``apt-get install -y chromium``; ``.ci/run`` installs it),
never a browser Playwright downloads. Screenshots go to ``var/screenshots/``.
"""

import csv
import io
import os
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.core.management import call_command
from django.utils import timezone

from backinstock.models import Subscription, SubscriptionStatus
from klaviyo_sync.models import CatalogSyncRun
from shop.models import Country, DisplayItem, DisplayItemTranslation, Language, Pricelist
from tests.conftest import DEMO_CATALOG
from tests.demand import demand_create

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1440, "height": 900}
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "var" / "screenshots"
DOCS = ROOT / "docs"

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: install it with `apt-get install -y chromium`")
    playwright_api = pytest.importorskip("playwright.sync_api")
    # Playwright's sync API keeps an event loop in this thread while the browser is open; the
    # ORM calls of the tests and their database set-up are still synchronous.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with playwright_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            yield browser
            browser.close()


@pytest.fixture
def page(browser, live_server, admin_user):
    """A logged-in admin's page; any request to another host than the live server is refused
    and remembered in ``page.foreign_requests``."""
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    page = context.new_page()
    own_host = urlsplit(live_server.url).netloc
    page.foreign_requests = []

    def route(route):
        if urlsplit(route.request.url).netloc == own_host:
            route.continue_()
        else:
            page.foreign_requests.append(route.request.url)
            route.abort()

    page.route("**/*", route)
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "password")
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")
    yield page
    context.close()


@pytest.fixture
def shop_with_demand(db):
    """Shoppers waiting in three locations, one failed subscription, a failed full sync."""
    data = demand_create()
    Subscription.objects.filter(email="failed@example.com").update(
        last_error="Klaviyo refused: Catalog variant does not exist.", attempts=1
    )
    run = CatalogSyncRun.objects.create(full=True, state="failed", total=10, done=7, failed=3)
    CatalogSyncRun.objects.filter(pk=run.pk).update(
        started_at=timezone.now() - timedelta(minutes=40)
    )
    return data


def _shoot(page, name: str, *, docs: bool = False) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    if docs and os.environ.get("SCREENSHOTS_TO_DOCS"):
        DOCS.mkdir(exist_ok=True)
        shutil.copy(path, DOCS / f"{name}.png")


def test_the_health_panel_shows_what_needs_attention(page, live_server, shop_with_demand):
    page.goto(f"{live_server.url}/admin/")

    panel = page.locator("#health-panel")
    assert panel.is_visible()
    assert "health-alarm" in page.locator("#health-failed").get_attribute("class")
    assert "health-alarm" in page.locator("#health-sync").get_attribute("class")
    assert "failed" in page.locator("#health-sync").inner_text()
    color = page.locator("#health-sync td").evaluate("e => getComputedStyle(e).backgroundColor")
    assert color != "rgba(0, 0, 0, 0)"  # it stands out
    _shoot(page, "health-panel", docs=True)
    assert page.foreign_requests == []


def test_the_demand_report_draws_its_chart_and_exports_its_csv(page, live_server, shop_with_demand):
    page.goto(f"{live_server.url}/admin/backinstock/demand/")

    rows = page.locator("#demand-table tbody tr")
    assert rows.count() == 2
    assert "Hoodie" in rows.first.inner_text()
    assert page.evaluate("() => Boolean(window.Chart && Chart.getChart('demand-chart'))")
    _shoot(page, "demand-report", docs=True)
    with page.expect_download() as download:
        page.click("#demand-csv")
    exported = list(csv.reader(io.StringIO(Path(download.value.path()).read_text())))
    assert exported[0][:3] == ["Product", "Variant", "Size"]
    assert [row[0] for row in exported[1:]] == ["Hoodie", "Tee"]
    assert page.foreign_requests == []


def test_the_retry_action_puts_a_failed_subscription_back_to_pending(
    page, live_server, shop_with_demand
):
    failed = Subscription.objects.get(email="failed@example.com")
    page.goto(f"{live_server.url}/admin/backinstock/subscription/?status__exact=failed")

    page.check(f"input[name=_selected_action][value='{failed.pk}']")
    page.select_option("select[name=action]", "retry_failed")
    page.click("button[name=index]")

    assert "1 failed subscription set back to pending" in page.locator(".messagelist").inner_text()
    failed.refresh_from_db()
    assert failed.status == SubscriptionStatus.PENDING


def test_the_subscription_list_shows_every_column_at_1440_pixels(
    page, live_server, shop_with_demand
):
    page.goto(f"{live_server.url}/admin/backinstock/subscription/")

    table_right = page.evaluate(
        "() => document.querySelector('#result_list').getBoundingClientRect().right"
    )
    # A label on one line is one line box; wrapped, it is one box per line.
    status_lines = page.evaluate(
        "() => document.querySelector('#result_list td.field-status_short span')"
        ".getClientRects().length"
    )
    _shoot(page, "subscriptions-1440")
    assert table_right <= VIEWPORT["width"]
    assert status_lines == 1


# Every box of a change page that must hold its content (the fieldsets, the inlines' modules,
# each form row, which clips what is too wide) and the page itself: how wide each is and how
# wide its content.
OVERFLOWS = """() => {
  const box = e => ({width: e.clientWidth, scrollWidth: e.scrollWidth});
  const boxes = {page: box(document.documentElement)};
  document.querySelectorAll('fieldset.module, .form-row').forEach((e, i) => {
    const group = e.closest('.inline-group');
    boxes[`${group ? group.id : 'form'} ${e.tagName.toLowerCase()}.${e.className} #${i}`] = box(e);
  });
  return boxes;
}"""
EU_AND_MORE = (
    "AT BE BG HR CY CZ DK EE FI FR GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES NO CH GB CA AU JP"
)


def test_the_product_page_and_its_inlines_fit_1440_pixels(page, live_server, db):
    call_command("import_catalog", str(DEMO_CATALOG), "--no-progress", stdout=io.StringIO())
    # Texts as long as merchandisers write them.
    DisplayItemTranslation.objects.filter(display_item_id=12366).update(
        name="Luvtröja i tjock ekologisk bomull med borstad insida och dubbel huva",
        uri="luvtroja-i-tjock-ekologisk-bomull-med-borstad-insida-och-dubbel-huva-svart",
        description="Tjock bomull. " * 40,
    )
    # The page's title and breadcrumbs name the item by its URI: 200 characters, no hyphen.
    DisplayItem.objects.filter(id=12366).update(uri="hoodieblack" * 18 + "xy")
    # A select is as wide as its longest choice, in every row; names may have 100 characters.
    Language.objects.create(code="nb", name="Norsk bokmål " + "W" * 87)
    Pricelist.objects.create(name="Outlet " + "W" * 93, currency="EUR")
    # The sizes' table has a column per ship-to country.
    sweden = Country.objects.get(code="SE")
    for code in EU_AND_MORE.split():
        Country.objects.update_or_create(
            code=code,
            defaults={
                "name": code,
                "market": sweden.market,
                "pricelist": sweden.pricelist,
                "language": sweden.language,
                "is_ship_to": True,
            },
        )
    page.goto(f"{live_server.url}/admin/shop/displayitem/12366/change/")

    boxes = page.evaluate(OVERFLOWS)
    _shoot(page, "display-item-1440")
    groups = {name.split()[0] for name in boxes}
    assert {"translations-group", "prices-group", "form"} <= groups
    too_wide = {name: box for name, box in boxes.items() if box["scrollWidth"] > box["width"] + 1}
    assert too_wide == {}
    last_country = page.locator(".size-availability th").last
    last_country.scroll_into_view_if_needed()
    assert last_country.is_visible() and last_country.inner_text() == "US"


def test_the_api_docs_open_offline_and_list_the_operations(page, live_server, db):
    page.goto(f"{live_server.url}/api/docs")

    page.wait_for_selector(".opblock", timeout=15_000)
    operations = page.locator(".opblock-summary-path").all_inner_texts()
    _shoot(page, "api-docs")
    assert "/api/checkout-api/back-in-stock-subscription" in operations
    assert page.foreign_requests == []
