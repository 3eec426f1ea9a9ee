"""Migration 0004: stored addresses to their canonical form, duplicates merged (oldest kept)."""

import hashlib
from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from backinstock.models import erasure_email_hashes

BEFORE = [("backinstock", "0003_subscription_email_canonical_schema")]
AFTER = [("backinstock", "0005_subscription_email_unique_profiledeletionrequest")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.fixture(autouse=True)
def _back_to_the_latest_schema():
    """Tests after these run on the whole schema, whatever migration the test stopped at."""
    yield
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_stored_addresses_become_canonical_and_their_duplicates_merge_oldest_first(catalog):
    apps = _migrate(BEFORE)
    product_model = apps.get_model("backinstock", "BackInStockProduct")
    variant_model = apps.get_model("backinstock", "BackInStockVariant")
    subscriptions = apps.get_model("backinstock", "Subscription").objects
    erasures = apps.get_model("backinstock", "ErasureRecord").objects
    product = product_model.objects.create(
        external_id="12366_SE_00", display_item_id=12366, country_id=catalog.sweden.id
    )
    variant = variant_model.objects.create(
        external_id="12366_SE_00_23400", product=product, size_id=catalog.size.id
    )
    now = timezone.now()

    def row(email, minutes_ago):
        created = subscriptions.create(variant=variant, email=email, language_id=catalog.english.id)
        subscriptions.filter(id=created.id).update(created_at=now - timedelta(minutes=minutes_ago))
        return created.id

    oldest_idn = row("idn@Bücher.example", 30)
    row("IDN@xn--bcher-kva.example", 20)
    kate = row("Kate@example.com", 50)
    row("\u212aate@example.com", 10)
    ida = row("İda@example.com", 5)
    localhost = row("Ann@LOCALHOST", 5)
    legacy_hash = hashlib.sha256(b"gone@example.com").hexdigest()
    erasures.create(email_hash=legacy_hash, subscriptions_deleted=1, source="command")

    apps = _migrate(AFTER)

    subscriptions = apps.get_model("backinstock", "Subscription").objects
    assert dict(subscriptions.values_list("id", "email")) == {
        oldest_idn: "idn@xn--bcher-kva.example",
        kate: "kate@example.com",
        ida: "i\u0307da@example.com",
        localhost: "ann@localhost",
    }
    record = apps.get_model("backinstock", "ErasureRecord").objects.get()
    assert record.email_hash != legacy_hash
    assert record.email_hash in erasure_email_hashes("gone@example.com")
