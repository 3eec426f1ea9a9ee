"""The demand report page, ``/admin/backinstock/demand/`` (CONTRACT §9), and its CSV export.

The page validates its query (``by``, ``market``, ``since``, ``until``, ``o``, ``p``), reads
through ``klaviyo_sync.demand`` and renders; ``?format=csv`` streams every row of the same
report instead of one page.
"""

import csv
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone

from klaviyo_sync.demand import (
    DEMAND_ORDER_DEFAULT,
    DemandFilter,
    DemandGrouping,
    demand_by_size,
    demand_per_day,
    demand_rolled_up,
)
from shop.models import Market

ROWS_PER_PAGE = 100
# A spreadsheet runs a cell that starts with one of these as a formula; a product name must not.
CSV_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _when(value: datetime | None) -> str:
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M") if value else ""


def _ship_to(row: dict[str, Any]) -> str:
    return (
        f"{row['country_name']}, {row['state_name']}" if row["state_name"] else row["country_name"]
    )


def _figure(value: int | None) -> str:
    return "" if value is None else str(value)


@dataclass(frozen=True)
class Column:
    label: str
    value: Callable[[dict[str, Any]], str]
    sort: str | None = None  # the name in ``?o=``; ``None``: not sortable


SIZE_COLUMNS = (
    Column("Product", lambda r: r["product_name"], "product"),
    Column("Variant", lambda r: r["variant_name"]),
    Column("Size", lambda r: r["size_name"], "size"),
    Column("Storefront item", lambda r: f"{r['display_item_id']}-{r['size_id']}"),
    Column("Market", lambda r: r["market_name"], "market"),
    Column("Ship-to", _ship_to, "ship_to"),
    Column("Shoppers waiting", lambda r: str(r["waiting"]), "waiting"),
    Column("Available now", lambda r: str(r["availability"]), "availability"),
    Column("Klaviyo holds", lambda r: _figure(r["klaviyo_quantity"]), "klaviyo"),
    Column("Last restock told to Klaviyo", lambda r: _when(r["last_restock_at"]), "restock"),
    Column("Waiting then", lambda r: _figure(r["waiting_at_restock"])),
    Column("Back-in-stock variant", lambda r: r["external_id"]),
)
_ROLLUP_TAIL = (
    Column("Shoppers waiting", lambda r: str(r["waiting"]), "waiting"),
    Column("Sizes with shoppers waiting", lambda r: str(r["sizes"]), "sizes"),
    Column("Last restock told to Klaviyo", lambda r: _when(r["last_restock_at"]), "restock"),
)
COLUMNS = {
    DemandGrouping.SIZE: SIZE_COLUMNS,
    DemandGrouping.PRODUCT: (
        Column("Product", lambda r: r["product_name"], "product"),
        *_ROLLUP_TAIL,
    ),
    DemandGrouping.MARKET: (
        Column("Market", lambda r: r["market_name"] or "(none)", "market"),
        *_ROLLUP_TAIL,
    ),
}


class DemandQueryForm(forms.Form):
    by = forms.ChoiceField(
        choices=[
            (DemandGrouping.SIZE, "size and ship-to location"),
            (DemandGrouping.PRODUCT, "product"),
            (DemandGrouping.MARKET, "market"),
        ],
        required=False,
        label="Per",
    )
    market = forms.ModelChoiceField(
        queryset=Market.objects.filter(countries__is_ship_to=True).distinct().order_by("name"),
        required=False,
        empty_label="every market",
    )
    since = forms.DateField(
        required=False, label="Subscribed from", widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        required=False, label="to", widget=forms.DateInput(attrs={"type": "date"})
    )
    o = forms.CharField(required=False, widget=forms.HiddenInput)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            self.add_error("until", "The end date is before the start date.")
        return data

    def demand_filter(self) -> DemandFilter:
        market = self.cleaned_data["market"]
        return DemandFilter(
            market_id=market.pk if market else None,
            since=self.cleaned_data["since"],
            until=self.cleaned_data["until"],
        )


def _cells(columns: Iterable[Column], row: dict[str, Any]) -> list[str]:
    return [column.value(row) for column in columns]


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv_safe(cell: str) -> str:
    if cell.startswith(CSV_FORMULA_STARTS) and not cell.lstrip("-").isdigit():
        return "'" + cell
    return cell


def _csv_lines(columns: tuple[Column, ...], rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow([column.label for column in columns])
    for row in rows:
        yield writer.writerow([_csv_safe(cell) for cell in _cells(columns, row)])


def _header(request: HttpRequest, column: Column, order: str) -> dict[str, Any]:
    """A column head: its label, and where a click sorts (descending first, then ascending)."""
    if column.sort is None:
        return {"label": column.label, "url": None, "sorted": None}
    sorted_now = {f"-{column.sort}": "descending", column.sort: "ascending"}.get(order)
    next_order = column.sort if order == f"-{column.sort}" else f"-{column.sort}"
    query = request.GET.copy()
    query["o"] = next_order
    query.pop("p", None)
    return {"label": column.label, "url": f"?{query.urlencode()}", "sorted": sorted_now}


def demand_report_view(request: HttpRequest) -> HttpResponseBase:
    """The demand report; whoever may view subscriptions may view it."""
    if not request.user.has_perm("backinstock.view_subscription"):
        raise PermissionDenied
    form = DemandQueryForm(request.GET)
    context: dict[str, Any] = {
        **admin.site.each_context(request),
        "title": "Demand: shoppers waiting",
        "form": form,
        "subscriptions_url": reverse("admin:backinstock_subscription_changelist"),
    }
    if not form.is_valid():
        return TemplateResponse(request, "admin/backinstock/demand.html", context, status=400)
    grouping = form.cleaned_data["by"] or DemandGrouping.SIZE
    order = form.cleaned_data["o"] or DEMAND_ORDER_DEFAULT
    filters = form.demand_filter()
    columns = COLUMNS[grouping]
    rows: Any
    if grouping == DemandGrouping.SIZE:
        rows = demand_by_size(filters=filters, order=order)
    else:
        rows = demand_rolled_up(grouping=grouping, filters=filters, order=order)

    if request.GET.get("format") == "csv":
        response = StreamingHttpResponse(_csv_lines(columns, iter(rows)), content_type="text/csv")
        filename = f"demand-per-{grouping}-{timezone.localdate():%Y-%m-%d}.csv"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response

    page: Any = Paginator(rows, ROWS_PER_PAGE).get_page(request.GET.get("p"))
    csv_query = request.GET.copy()
    csv_query["format"] = "csv"
    csv_query.pop("p", None)
    page_query = request.GET.copy()
    page_query.pop("p", None)
    days = demand_per_day(filters=filters)
    context.update(
        {
            "grouping": grouping,
            "headers": [_header(request, column, order) for column in columns],
            "page": page,
            "rows": [
                {
                    "cells": _cells(columns, row),
                    "subscriptions_q": (
                        f"{row['display_item_id']}-{row['size_id']}"
                        if grouping == DemandGrouping.SIZE
                        else None
                    ),
                }
                for row in page.object_list
            ],
            "csv_url": f"?{csv_query.urlencode()}",
            "page_query": page_query.urlencode(),
            "chart": {
                "labels": [f"{day.day:%Y-%m-%d}" for day in days],
                "subscriptions": [day.subscriptions for day in days],
                "restocks": [day.restocks for day in days],
            },
        }
    )
    return TemplateResponse(request, "admin/backinstock/demand.html", context)
