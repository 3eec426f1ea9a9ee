import csv
import io
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backinstock.models import Subscription
from tests.demand import demand_create

URL = reverse("backinstock-demand")


@pytest.fixture
def demand(db):
    return demand_create()


def _table(response) -> list[list[str]]:
    return [row["cells"] for row in response.context["rows"]]


def _csv(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_the_report_shows_shoppers_waiting_per_size_and_location_in_shop_words(
    admin_client, demand
):
    response = admin_client.get(URL)

    assert response.status_code == 200
    hoodie, tee = _table(response)
    assert hoodie[:8] == ["Hoodie", "Black", "M", "12366-23400", "Nordics", "Sweden", "3", "43"]
    assert hoodie[8] == "0"  # what Klaviyo holds
    assert hoodie[9] != "" and hoodie[10] == "2"  # last restock, and how many waited then
    assert tee[0] == "Tee" and tee[6] == "1" and tee[8] == ""  # never pushed


def test_the_report_sorts_by_a_column_both_ways(admin_client, demand):
    ascending = admin_client.get(URL, {"o": "waiting"})
    descending = admin_client.get(URL, {"o": "-waiting"})

    assert [row[0] for row in _table(ascending)] == ["Tee", "Hoodie"]
    assert [row[0] for row in _table(descending)] == ["Hoodie", "Tee"]


def test_the_report_filters_by_market(admin_client, demand):
    response = admin_client.get(URL, {"market": demand["nordics"].pk})

    assert [row[0] for row in _table(response)] == ["Hoodie"]


def test_the_report_filters_by_the_day_shoppers_subscribed(admin_client, demand):
    Subscription.objects.filter(variant=demand["tee"]).update(
        created_at=timezone.now() - timedelta(days=10)
    )
    since = timezone.localdate() - timedelta(days=1)

    response = admin_client.get(URL, {"since": since.isoformat()})

    assert [row[0] for row in _table(response)] == ["Hoodie"]


@pytest.mark.parametrize(
    ("by", "expected"),
    [("product", [["Hoodie", "3", "1"], ["Tee", "1", "1"]]), ("market", [["Nordics", "3", "1"]])],
)
def test_the_report_rolls_up_per_product_and_per_market(admin_client, demand, by, expected):
    query = {"by": by} if by == "product" else {"by": by, "market": demand["nordics"].pk}

    response = admin_client.get(URL, query)

    assert [row[:3] for row in _table(response)] == expected


def test_the_csv_export_has_the_same_rows_as_the_page(admin_client, demand):
    page = admin_client.get(URL, {"o": "waiting"})
    export = admin_client.get(URL, {"o": "waiting", "format": "csv"})

    assert export["Content-Type"] == "text/csv"
    assert "attachment" in export["Content-Disposition"]
    header, *rows = _csv(export)
    assert header[:4] == ["Product", "Variant", "Size", "Storefront item"]
    assert rows == _table(page)


def test_the_csv_export_does_not_let_a_product_name_run_as_a_spreadsheet_formula(
    admin_client, demand
):
    product = demand["tee"].product.display_item.variant.product
    product.name = "=HYPERLINK(1)"
    product.save()

    rows = _csv(admin_client.get(URL, {"format": "csv", "by": "product"}))

    assert rows[-1][:3] == ["'=HYPERLINK(1)", "1", "1"]


def test_the_chart_counts_new_subscriptions_and_restocks_per_day(admin_client, demand):
    response = admin_client.get(URL)

    chart = response.context["chart"]
    today = timezone.localdate()
    assert len(chart["labels"]) == 30 and chart["labels"][-1] == today.isoformat()
    assert chart["subscriptions"][-1] == 5
    assert chart["restocks"][-3] == 1 and sum(chart["restocks"]) == 1


def test_the_chart_library_is_served_from_the_project_s_static_files(admin_client, demand):
    from django.contrib.staticfiles import finders

    html = admin_client.get(URL).content.decode()

    assert '/static/klaviyo_sync/vendor/chartjs-4.4.9/chart.umd.js"' in html
    assert finders.find("klaviyo_sync/vendor/chartjs-4.4.9/chart.umd.js")
    assert "https://" not in html.split("<body")[1].split('id="demand-table"')[0]


@pytest.mark.parametrize(
    "query",
    [{"since": "yesterday"}, {"since": "2026-02-30"}, {"market": "x"}, {"by": "colour"}],
)
def test_bad_report_parameters_get_a_400_that_says_what_is_wrong(admin_client, demand, query):
    response = admin_client.get(URL, query)

    assert response.status_code == 400
    assert response.context["form"].errors


def test_an_end_date_before_the_start_date_is_refused(admin_client, demand):
    response = admin_client.get(URL, {"since": "2026-03-02", "until": "2026-03-01"})

    assert response.status_code == 400
    assert "before the start date" in response.content.decode()


def test_the_report_needs_the_permission_to_view_subscriptions(client, demand):
    User.objects.create_user("clerk", password="pw", is_staff=True)
    client.login(username="clerk", password="pw")

    assert client.get(URL).status_code == 403


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    query=st.dictionaries(
        st.sampled_from(["by", "market", "since", "until", "o", "p", "format"]),
        st.text(max_size=12),
    )
)
def test_no_query_makes_the_report_fail_or_change_anything(admin_client, demand, query):
    before = list(Subscription.objects.order_by("id").values_list("id", "status"))

    response = admin_client.get(URL, query)

    assert response.status_code in {200, 400}
    assert list(Subscription.objects.order_by("id").values_list("id", "status")) == before
