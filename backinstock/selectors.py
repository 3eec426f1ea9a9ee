"""Reads of subscriptions and back-in-stock records."""

from django.db.models import QuerySet

from backinstock.emails import email_match_key
from backinstock.models import Subscription


def subscription_list_for_email(*, email: str) -> QuerySet[Subscription]:
    """Every subscription of an address, matched case-insensitively, oldest first."""
    return (
        Subscription.objects.filter(email__lower=email_match_key(email))
        .select_related("variant__product__country", "variant__product__state", "language")
        .order_by("created_at", "id")
    )
