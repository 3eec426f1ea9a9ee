"""The stock Integration API (CONTRACT §5)."""

import pytest

from shop.hooks import stock_changed
from shop.models import Stock
from tests.factories import SizeFactory

URL = "/api/integration-api/stock"
TOKEN = "integration-token-123"


@pytest.fixture(autouse=True)
def _token(settings):
    settings.INTEGRATION_API_TOKEN = TOKEN


def put_stock(client, body, token=TOKEN):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    return client.post(URL, body, format="json", **headers)


def test_absolute_stock_is_set_and_the_changed_sizes_announced(
    api_client, locations, django_capture_on_commit_callbacks
):
    other = SizeFactory(sku="HD-1-BLK-L")
    announced = []
    receiver = lambda sender, size_ids, **kw: announced.append(size_ids)  # noqa: E731
    stock_changed.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            response = put_stock(
                api_client,
                {
                    "stock": [
                        {
                            "sku": "HD-1-BLK-M",
                            "warehouse": "Stockholm",
                            "physical": 12,
                            "allocated": 2,
                        },
                        {"sku": "HD-1-BLK-L", "warehouse": "New Jersey", "physical": 3},
                    ]
                },
            )
    finally:
        stock_changed.disconnect(receiver)

    assert response.status_code == 200
    assert response.json() == {"updated": 2}
    assert sorted(Stock.objects.values_list("size__sku", "physical", "allocated")) == [
        ("HD-1-BLK-L", 3, 0),
        ("HD-1-BLK-M", 12, 2),
    ]
    assert announced == [frozenset({locations.size.id, other.id})]


def test_one_invalid_entry_changes_nothing_and_every_problem_is_named(api_client, locations):
    Stock.objects.create(size=locations.size, warehouse=locations.stockholm, physical=1)
    response = put_stock(
        api_client,
        {
            "stock": [
                {"sku": "HD-1-BLK-M", "warehouse": "Stockholm", "physical": 50},
                {"sku": "HD-1-BLK-M", "warehouse": "Stockholm", "physical": 51},
                {"sku": "HD-9", "warehouse": "Stockholm", "physical": 1},
                {"sku": "HD-1-BLK-M", "warehouse": "Mars", "physical": 1},
                {"sku": "HD-1-BLK-M", "warehouse": "Berlin", "physical": -1},
                {"sku": "HD-1-BLK-M", "warehouse": "New Jersey", "physical": "many"},
                {"warehouse": "New Jersey", "physical": 1},
            ]
        },
    )

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert set(errors) >= {"stock[4].physical", "stock[5].physical", "stock[6].sku"}
    assert Stock.objects.get().physical == 1


def test_catalog_errors_are_reported_with_their_entry_path(api_client, locations):
    response = put_stock(
        api_client,
        {
            "stock": [
                {"sku": "HD-1-BLK-M", "warehouse": "Stockholm", "physical": 50},
                {"sku": "HD-9", "warehouse": "Stockholm", "physical": 1},
                {"sku": "HD-1-BLK-M", "warehouse": "Mars", "physical": 1},
                {"sku": "HD-1-BLK-M", "warehouse": "Stockholm", "physical": 2},
            ]
        },
    )

    assert response.status_code == 400
    assert response.json() == {
        "errors": {
            "stock[1].sku": "unknown SKU HD-9",
            "stock[2].warehouse": "unknown warehouse Mars",
            "stock[3].sku": "HD-1-BLK-M in Stockholm is already at stock[0]",
        }
    }
    assert not Stock.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "stock"),
        ({"stock": []}, "stock"),
        ({"stock": "HD-1"}, "stock"),
        ([{"sku": "HD-1-BLK-M"}], "body"),
    ],
)
def test_a_body_without_a_list_of_entries_is_refused(api_client, locations, body, field):
    response = put_stock(api_client, body)

    assert response.status_code == 400
    assert list(response.json()["errors"]) == [field]


def test_more_than_ten_thousand_entries_are_refused(api_client, locations):
    entry = {"sku": "HD-1-BLK-M", "warehouse": "Stockholm", "physical": 1}
    response = put_stock(api_client, {"stock": [entry] * 10_001})

    assert response.status_code == 400
    assert "10000" in response.json()["errors"]["stock"]
    assert not Stock.objects.exists()


def test_ten_thousand_entries_are_applied_in_one_call(api_client, locations):
    sizes = SizeFactory.create_batch(2_500)
    warehouses = ["Stockholm", "New Jersey", "Berlin", "Stockholm"]
    entries = [
        {"sku": size.sku, "warehouse": warehouse, "physical": 7}
        for size in sizes
        for warehouse in warehouses[:3]
    ] + [{"sku": size.sku, "warehouse": "Spare", "physical": 1} for size in sizes]
    from tests.factories import WarehouseFactory

    WarehouseFactory(name="Spare")
    response = put_stock(api_client, {"stock": entries})

    assert response.status_code == 200
    assert response.json() == {"updated": 10_000}
    assert Stock.objects.count() == 10_000


@pytest.mark.parametrize(
    ("configured", "header", "status"),
    [
        ("", f"Bearer {TOKEN}", 403),
        (TOKEN, None, 403),
        (TOKEN, TOKEN, 403),
        (TOKEN, "Bearer wrong", 403),
        (TOKEN, f"Bearer {TOKEN}x", 403),
        (TOKEN, f"Bearer {TOKEN}", 200),
    ],
    ids=["closed", "missing", "no-bearer", "wrong", "longer", "right"],
)
def test_the_integration_api_needs_the_bearer_token(
    api_client, locations, settings, configured, header, status
):
    settings.INTEGRATION_API_TOKEN = configured
    headers = {"HTTP_AUTHORIZATION": header} if header else {}
    body = {"stock": [{"sku": "HD-1-BLK-M", "warehouse": "Stockholm", "physical": 1}]}

    response = api_client.post(URL, body, format="json", **headers)

    assert response.status_code == status
    assert Stock.objects.count() == (1 if status == 200 else 0)
    assert TOKEN not in response.content.decode()


@pytest.mark.parametrize("figure", [2**31, 2**63, 10**30])
def test_a_figure_beyond_the_columns_range_is_a_400_on_its_field(api_client, locations, figure):
    response = put_stock(
        api_client,
        {
            "stock": [
                {"sku": "HD-1-BLK-M", "warehouse": "Stockholm", "physical": 1, "allocated": figure}
            ]
        },
    )

    assert response.status_code == 400
    assert response.json() == {"errors": {"stock[0].allocated": "must be at most 2147483647"}}
    assert not Stock.objects.exists()


def test_the_largest_figure_the_column_holds_is_accepted(api_client, locations):
    entry = {"sku": "HD-1-BLK-M", "warehouse": "Stockholm", "physical": 2**31 - 1}
    assert put_stock(api_client, {"stock": [entry]}).status_code == 200
    assert Stock.objects.get().physical == 2**31 - 1


def test_structural_range_and_catalog_problems_come_in_one_answer(api_client, locations):
    response = put_stock(
        api_client,
        {
            "stock": [
                {"sku": "HD-9", "warehouse": "Mars", "physical": -1},
                {"sku": "HD-8", "warehouse": "Stockholm", "physical": "many"},
                "not an entry",
            ]
        },
    )

    assert response.status_code == 400
    assert response.json() == {
        "errors": {
            "stock[0].sku": "unknown SKU HD-9",
            "stock[0].warehouse": "unknown warehouse Mars",
            "stock[0].physical": "must be zero or more",
            "stock[1].sku": "unknown SKU HD-8",
            "stock[1].physical": "must be an integer",
            "stock[2]": "Invalid data. Expected a dictionary, but got str.",
        }
    }


@pytest.mark.parametrize("figure", [True, 1.5, "12", "²"])
def test_a_figure_that_is_not_a_json_integer_is_refused_on_its_field(api_client, locations, figure):
    entry = {"sku": "HD-1-BLK-M", "warehouse": "Stockholm", "physical": figure}
    response = put_stock(api_client, {"stock": [entry]})

    assert response.status_code == 400
    assert response.json() == {"errors": {"stock[0].physical": "must be an integer"}}


def test_an_unpaired_surrogate_anywhere_in_the_body_is_a_400(api_client, locations):
    response = api_client.post(
        URL,
        b'{"stock": [{"sku": "\\ud800", "warehouse": "Stockholm", "physical": 1}]}',
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {TOKEN}",
    )

    assert response.status_code == 400
    assert response.json() == {
        "errors": {"body": "Malformed JSON: unpaired surrogate in a string."}
    }
