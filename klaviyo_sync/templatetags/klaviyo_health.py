"""``{% klaviyo_health_panel %}``: the health panel on the admin's index."""

from typing import Any

from django import template

from klaviyo_sync.health import integration_health_get

register = template.Library()


@register.inclusion_tag("admin/klaviyo_sync/health_panel.html", takes_context=True)
def klaviyo_health_panel(context: dict[str, Any]) -> dict[str, Any]:
    return {"health": integration_health_get(), "request": context.get("request")}
