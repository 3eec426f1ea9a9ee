"""One address is one person on SQLite too (the demo's database), whose lower() is ASCII-only."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]

SCRIPT = """
import json
from backinstock.models import ErasureRecord, Subscription, erasure_email_hash
from backinstock.services import person_erase, subscription_create
from config.api.errors import InvalidInput
from klaviyo_sync.models import IntegrationSettings
from django.utils import timezone

IntegrationSettings.objects.update_or_create(
    pk=IntegrationSettings.SINGLETON_PK,
    defaults={"catalog_sync_enabled": True, "catalog_sync_state": "completed",
              "first_full_sync_completed_at": timezone.now(), "back_in_stock_enabled": True},
)
def subscribe(email):
    try:
        subscription_create(item="12366-23400", country_code="SE", state_code=None,
                            email=email, language_code=None)
        return 201
    except InvalidInput:
        return 400
answers = [subscribe(e) for e in ["kate@example.com", "\\u212aate@example.com",
                                   "idn@bücher.de", "idn@xn--bcher-kva.de",
                                   "İvan@example.com", "bob@example.com"]]
stored = sorted(Subscription.objects.values_list("email", flat=True))
record = person_erase(email="\\u212aate@example.com", source="command",
                      delete_klaviyo_profile=False)
print(json.dumps({
    "answers": answers,
    "stored": stored,
    "erased": record.subscriptions_deleted,
    "audited_as_kate": record.email_hash == erasure_email_hash("kate@example.com"),
    "left": sorted(Subscription.objects.values_list("email", flat=True)),
}))
"""


@pytest.mark.slow
def test_the_kelvin_sign_and_an_idn_domain_are_one_person_on_sqlite(tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
    }

    def manage(*args):
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=PROJECT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        ).stdout

    manage("migrate", "--no-input", "-v", "0")
    manage("import_catalog", "shop/catalogs/demo.json", "--no-progress", "-v", "0")
    result = json.loads(manage("shell", "-c", SCRIPT).strip().splitlines()[-1])

    assert result == {
        "answers": [201, 201, 201, 201, 400, 201],
        "stored": ["bob@example.com", "idn@xn--bcher-kva.de", "kate@example.com"],
        "erased": 1,
        "audited_as_kate": True,
        "left": ["bob@example.com", "idn@xn--bcher-kva.de"],
    }
