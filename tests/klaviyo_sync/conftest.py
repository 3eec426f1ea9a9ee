from collections.abc import Iterator

import pytest
from django.core.management import call_command

from klaviyo_sandbox import Sandbox
from klaviyo_sync import ratelimit
from tests.conftest import DEMO_CATALOG
from tests.sandbox import API_KEY, running_sandbox


@pytest.fixture
def sandbox(settings) -> Iterator[Sandbox]:
    """A Klaviyo sandbox in this process, and the settings pointing at it."""
    with running_sandbox() as running:
        settings.KLAVIYO_API_URL = running.url
        settings.KLAVIYO_API_KEY = API_KEY
        ratelimit._shared = None  # a fresh limiter; its Redis keys were flushed with the cache
        yield running


@pytest.fixture
def demo_catalog(db) -> None:
    call_command("import_catalog", str(DEMO_CATALOG), "--no-progress", verbosity=0)
