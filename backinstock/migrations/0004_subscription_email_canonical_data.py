"""Every stored address to its canonical form; the duplicates that reveals merged, oldest kept.

Rows whose address today's rules refuse (a non-ASCII local part, ``ann@localhost``) keep a
best-effort form (the look-up form, else trimmed, NFC and lower-cased), so that their owner can
still list and erase them. Erasure audit hashes, unsalted SHA-256 until now, are re-keyed with
the audit secret (``erasure_email_hash_of_legacy``), so that the table alone no longer tells who
was erased and the admin still finds them by address.
"""

import unicodedata

from django.db import migrations

from backinstock.emails import EmailInvalid, email_canonical
from backinstock.models import erasure_email_hash_of_legacy

BATCH = 2000


def _canonical_or_best_effort(email: str) -> str:
    try:
        return email_canonical(email, lookup=True)
    except EmailInvalid:
        return unicodedata.normalize("NFC", email.strip()).lower()[:254]


def canonicalise(apps, schema_editor):
    Subscription = apps.get_model("backinstock", "Subscription")
    ErasureRecord = apps.get_model("backinstock", "ErasureRecord")

    kept: dict[tuple[str, int], int] = {}
    duplicates: list[int] = []
    changed: list = []
    rows = Subscription.objects.order_by("created_at", "id").only("id", "email", "variant_id")
    for row in rows.iterator(chunk_size=BATCH):
        canonical = _canonical_or_best_effort(row.email)
        key = (canonical, row.variant_id)
        if key in kept:
            duplicates.append(row.id)
            continue
        kept[key] = row.id
        if canonical != row.email:
            row.email = canonical
            changed.append(row)
    for start in range(0, len(duplicates), BATCH):
        Subscription.objects.filter(id__in=duplicates[start : start + BATCH]).delete()
    Subscription.objects.bulk_update(changed, ["email"], batch_size=BATCH)

    records = list(ErasureRecord.objects.only("id", "email_hash"))
    for record in records:
        record.email_hash = erasure_email_hash_of_legacy(record.email_hash)
    ErasureRecord.objects.bulk_update(records, ["email_hash"], batch_size=BATCH)


class Migration(migrations.Migration):
    dependencies = [
        ("backinstock", "0003_subscription_email_canonical_schema"),
    ]

    operations = [
        migrations.RunPython(canonicalise, migrations.RunPython.noop, elidable=False),
    ]
