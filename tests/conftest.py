import socket
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from backinstock.throttling import cache_outage_forget, client_refusals_forget
from klaviyo_sync.models import IntegrationSettings
from shop.models import Country, Language, Size, State
from tests.factories import (
    AllocationRuleFactory,
    CountryFactory,
    DisplayItemFactory,
    LanguageFactory,
    MarketFactory,
    SizeFactory,
    StateFactory,
    WarehouseFactory,
)
from tests.worker import celery_broker

DEMO_CATALOG = Path(__file__).resolve().parent.parent / "shop" / "catalogs" / "demo.json"


@pytest.fixture(autouse=True)
def _clear_cache():
    """Throttle counters live in the cache (Redis db 15 in tests): every test starts from zero,
    and with no client remembered as refused by this process."""
    cache.clear()
    client_refusals_forget()
    cache_outage_forget()
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


@dataclass
class Catalog:
    english: Language
    swedish: Language
    sweden: Country
    usa: Country
    new_york: State
    size: Size  # size 23400 of published display item 12366
    unpublished_size: Size  # size 23500 of unpublished display item 12999


@pytest.fixture
def catalog(db) -> Catalog:
    english = LanguageFactory(code="en", name="English", is_default=True)
    swedish = LanguageFactory(code="sv", name="Swedish")
    stockholm, new_jersey = WarehouseFactory(name="Stockholm"), WarehouseFactory(name="New Jersey")
    sweden = CountryFactory(
        code="SE",
        language=swedish,
        market=MarketFactory(allocation_rule=AllocationRuleFactory(warehouses=[stockholm])),
    )
    usa = CountryFactory(
        code="US",
        language=english,
        market=MarketFactory(
            allocation_rule=AllocationRuleFactory(warehouses=[new_jersey, stockholm])
        ),
    )
    new_york = StateFactory(country=usa, code="NY")
    StateFactory(country=usa, code="CA")
    CountryFactory(code="NO", market=None, pricelist=None, is_ship_to=False)
    size = SizeFactory(
        id=23400, variant=DisplayItemFactory(id=12366, priced_everywhere=True).variant, name="M"
    )
    unpublished = SizeFactory(
        id=23500,
        variant=DisplayItemFactory(id=12999, published=False, priced_everywhere=True).variant,
    )
    return Catalog(english, swedish, sweden, usa, new_york, size, unpublished)


@pytest.fixture
def hung_broker():
    """A broker address that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    host, port = listener.getsockname()
    with celery_broker(f"redis://{host}:{port}/0"):
        yield
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    listener.close()
