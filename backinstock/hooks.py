"""What ``backinstock`` announces (``klaviyo_sync`` listens; this app does not know it).

- ``subscription_pending(sender, subscription_id: int)``: a subscription was stored, asked for
  again, or put back to ``pending`` by an operator. Sent after commit. Listeners queue the
  push; if they miss it, the periodic sweep of pending rows still finds it.
- ``profile_deletion_requested(sender, request_id: int)``: an erasure asked that Klaviyo delete
  the person's profile (a ``ProfileDeletionRequest`` row). Sent after commit. Listeners queue
  the request; if they miss it, the periodic sweep of those rows still finds it.
"""

from django.db import transaction
from django.dispatch import Signal

from shop.hooks import send_logging_failures

subscription_pending = Signal()
profile_deletion_requested = Signal()


def announce_subscription_pending(*, subscription_id: int) -> None:
    transaction.on_commit(
        lambda: send_logging_failures(subscription_pending, subscription_id=subscription_id)
    )


def announce_profile_deletion_requested(*, request_id: int) -> None:
    transaction.on_commit(
        lambda: send_logging_failures(profile_deletion_requested, request_id=request_id)
    )
