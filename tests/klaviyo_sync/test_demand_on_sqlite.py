"""The demand report on the demo's database: SQLite (``make demo`` runs on it)."""

import os

import pytest

from tests.web import manage

REPORT_SCRIPT = """
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from backinstock.models import BackInStockProduct, BackInStockVariant, Subscription
from klaviyo_sync.models import Restock
from shop.models import Country, DisplayItem, Language, Size

settings.ALLOWED_HOSTS = ["*"]
product = BackInStockProduct.objects.create(
    external_id="12366_SE_00", display_item=DisplayItem.objects.get(id=12366),
    country=Country.objects.get(code="SE"),
)
variant = BackInStockVariant.objects.create(
    external_id="12366_SE_00_23400", product=product, size=Size.objects.get(id=23400)
)
Subscription.objects.create(
    variant=variant, email="ann@example.com", language=Language.objects.first()
)
Restock.objects.create(
    variant=variant, previous_quantity=0, quantity=43, waiting_subscribers=1,
    sent_at=timezone.now(),
)
client = Client(raise_request_exception=True)
client.force_login(User.objects.create_superuser("op", password="op"))
today = timezone.localdate().isoformat()
for query in ({}, {"o": "restock"}, {"o": "-availability"}, {"since": today, "until": today},
              {"market": str(product.country.market_id)}, {"by": "product"}, {"by": "market"}):
    response = client.get("/admin/backinstock/demand/", query)
    print(response.status_code, "<h2>1 row</h2>" in response.content.decode())
export = client.get("/admin/backinstock/demand/", {"format": "csv"})
print(b"".join(export.streaming_content).decode().splitlines()[1])
"""


@pytest.mark.slow
def test_the_demand_report_answers_on_sqlite_as_on_postgresql(tmp_path):
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}",
        "REDIS_URL": "",
        "CELERY_BROKER_URL": "memory://localhost/",
    }

    manage("migrate", "-v", "0", env=environment)
    manage("import_catalog", "shop/catalogs/demo.json", "--no-progress", env=environment)
    lines = manage("shell", "-c", REPORT_SCRIPT, env=environment).strip().splitlines()

    assert lines[-8:-1] == ["200 True"] * 7
    cells = lines[-1].split(",")
    assert cells[:4] == ["Hoodie", "Black", "M", "12366-23400"]
    assert cells[9] != ""  # the restock's time, read back from SQLite's text
