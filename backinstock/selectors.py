"""Reads of subscriptions and back-in-stock records."""

from django.db.models import QuerySet

from backinstock.emails import email_for_lookup
from backinstock.models import Subscription


def subscription_list_for_email(*, email: str) -> QuerySet[Subscription]:
    """Every subscription of an address (by its canonical form), oldest first.

    Raises ``InvalidInput`` on ``email`` when it is not an address (``backinstock.emails``).
    """
    return (
        Subscription.objects.filter(email=email_for_lookup(email))
        .select_related("variant__product__country", "variant__product__state", "language")
        .order_by("created_at", "id")
    )
