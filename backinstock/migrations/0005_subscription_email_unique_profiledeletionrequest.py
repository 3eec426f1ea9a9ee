import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("backinstock", "0004_subscription_email_canonical_data"),
    ]

    operations = [
        migrations.AddConstraint(
            model_name="subscription",
            constraint=models.UniqueConstraint(
                fields=("email", "variant"), name="backinstock_subscription_email_variant"
            ),
        ),
        migrations.CreateModel(
            name="ProfileDeletionRequest",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "email",
                    models.EmailField(help_text="The canonical address to delete.", max_length=254),
                ),
                ("attempts", models.PositiveIntegerField(default=0)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "erasure",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="profile_deletion_request",
                        to="backinstock.erasurerecord",
                    ),
                ),
            ],
            options={
                "verbose_name": "Klaviyo profile deletion request",
                "ordering": ["created_at"],
            },
        ),
    ]
