"""Pending stock changes keep when each size was first noted since the last push, so that the
coalescing window bounds the wait of a size noted again and again (``stock_changes_due``)."""

from django.db import migrations, models
from django.db.models import F


def first_noted_from_latest(apps, schema_editor):
    apps.get_model("klaviyo_sync", "PendingStockChange").objects.update(
        first_noted_at=F("created_at")
    )


class Migration(migrations.Migration):
    dependencies = [("klaviyo_sync", "0005_catalog_sync_run_account")]

    operations = [
        migrations.AddField(
            model_name="pendingstockchange",
            name="first_noted_at",
            field=models.DateTimeField(
                null=True,
                help_text="The first change noted since the last push (the coalescing window's).",
            ),
        ),
        migrations.RunPython(first_noted_from_latest, migrations.RunPython.noop, elidable=True),
        migrations.AlterField(
            model_name="pendingstockchange",
            name="first_noted_at",
            field=models.DateTimeField(
                help_text="The first change noted since the last push (the coalescing window's)."
            ),
        ),
        migrations.AlterField(
            model_name="pendingstockchange",
            name="created_at",
            field=models.DateTimeField(help_text="The latest change noted (the quiet time's)."),
        ),
    ]
