from pathlib import Path

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from klaviyo_sync.models import IntegrationSettings

DEMO_CATALOG = Path(__file__).resolve().parent.parent / "shop" / "catalogs" / "demo.json"


@pytest.fixture(autouse=True)
def _clear_cache():
    """Throttle counters live in the cache (Redis db 15 in tests): every test starts from zero."""
    cache.clear()
    yield


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def back_in_stock_on(db) -> IntegrationSettings:
    """The Klaviyo integration as after a first full catalog sync, with back in stock on."""
    from django.utils import timezone

    record, _ = IntegrationSettings.objects.update_or_create(
        pk=IntegrationSettings.SINGLETON_PK,
        defaults={
            "catalog_sync_enabled": True,
            "catalog_sync_state": "completed",
            "first_full_sync_completed_at": timezone.now(),
            "back_in_stock_enabled": True,
        },
    )
    return record
