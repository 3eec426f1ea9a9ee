# The unique index on lower(email) goes before the addresses are rewritten (0004): SQL's lower()
# and Python's disagree outside ASCII, and rows being merged could collide under it mid-way.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("backinstock", "0002_erasure_record"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="subscription",
            name="backinstock_subscription_unique_email_variant",
        ),
        migrations.RemoveIndex(
            model_name="subscription",
            name="backinstock_sub_email_lower",
        ),
        migrations.AlterField(
            model_name="subscription",
            name="email",
            field=models.EmailField(
                help_text="The canonical address (backinstock.emails): matched, and sent to Klaviyo.",
                max_length=254,
            ),
        ),
    ]
