"""What other apps add to back in stock's admin pages.

``backinstock`` knows nothing of Klaviyo, yet an operator wants to see, next to a subscription,
when Klaviyo was last told its size is back. ``klaviyo_sync.admin`` adds that here rather than
replacing the admin classes, so ``backinstock/admin.py`` stays the one home of these pages and
this module lists everything that comes from elsewhere.

- ``subscription_column_add(column=..., annotations=...)``: one more column on the subscription
  list. ``column`` is an ``@admin.display`` function of a subscription; ``annotations`` are the
  queryset annotations it reads (``{"last_restock": Max(...)}``).
- ``variant_inline_add(inline=...)``: one more inline on a back-in-stock variant's page.
- ``subscription_inline_add(inline=...)``: one more inline on a subscription's page (the Klaviyo
  integration's history of push attempts).

Both are called at import of the adding app's ``admin`` module; the pages read them per request.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.contrib.admin.options import InlineModelAdmin


@dataclass
class AdminAdditions:
    subscription_columns: list[Callable[[Any], Any]] = field(default_factory=list)
    subscription_annotations: dict[str, Any] = field(default_factory=dict)
    variant_inlines: list[type[InlineModelAdmin]] = field(default_factory=list)
    subscription_inlines: list[type[InlineModelAdmin]] = field(default_factory=list)


additions = AdminAdditions()


def subscription_column_add(*, column: Callable[[Any], Any], annotations: dict[str, Any]) -> None:
    """Show ``column`` on the subscription list, computing ``annotations`` for it."""
    if column not in additions.subscription_columns:
        additions.subscription_columns.append(column)
    additions.subscription_annotations.update(annotations)


def variant_inline_add(*, inline: type[InlineModelAdmin]) -> None:
    """Show ``inline`` on every back-in-stock variant's page."""
    if inline not in additions.variant_inlines:
        additions.variant_inlines.append(inline)


def subscription_inline_add(*, inline: type[InlineModelAdmin]) -> None:
    """Show ``inline`` on every subscription's page."""
    if inline not in additions.subscription_inlines:
        additions.subscription_inlines.append(inline)
