"""Read-only HTML views of what the sandbox holds: what a person would see in their Klaviyo.

Every page says when it was drawn (UTC); the index also shows the injected faults and the latest
refused calls. Everything shown is escaped; the pages use inline CSS and no JavaScript.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any

from .account import Account

MAX_ROWS = 500
LINK = '<a href="{url}">{url}</a>'
IMG = '<img src="{url}" alt="">'
STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } .note { color: #a60; } nav a { margin-right: 1em; }
.refreshed { color: #666; font-size: 12px; } .fault { color: #b00; }
.email { border: 1px solid #ccc; border-radius: 6px; padding: 8px 16px; margin: 1em 0;
  max-width: 40em; }
img.product { max-width: 200px; max-height: 200px; }
img { max-width: 48px; max-height: 48px; } code { background: #f6f6f6; padding: 0 3px; }
"""


def _page(title: str, body: str) -> str:
    nav = (
        '<nav><a href="/">Sandbox</a><a href="/catalog">Catalog</a>'
        '<a href="/back-in-stock">Back in stock</a><a href="/emails">Emails</a>'
        '<a href="/_sandbox/state">State (JSON)</a></nav>'
    )
    drawn = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    refreshed = f'<p class="refreshed">Last refreshed {drawn}; reload the page to refresh.</p>'
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}'
        f"</title><style>{STYLE}</style></head><body>{nav}<h1>{escape(title)}</h1>{refreshed}"
        f"{body}</body></html>"
    )


def _cell(value: Any) -> str:
    if value is None:
        return "<td></td>"
    if isinstance(value, list):
        return f"<td>{escape(', '.join(str(v) for v in value))}</td>"
    return f"<td>{escape(str(value))}</td>"


def _link(url: Any, content: str) -> str:
    """A link or image only for http(s) URLs; anything else is shown as text."""
    if isinstance(url, str) and url.startswith(("http://", "https://")):
        return content.format(url=escape(url, quote=True))
    return escape(str(url or ""))


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], total: int) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(f"<tr>{''.join(row)}</tr>" for row in rows)
    note = ""
    if total > MAX_ROWS:
        note = f'<p class="note">Showing the first {MAX_ROWS} of {total} rows.</p>'
    return f"{note}<table><tr>{head}</tr>{body}</table>"


def _index(state: dict[str, Any]) -> str:
    counts = [
        ("catalog items", len(state["items"])),
        ("catalog variants", len(state["variants"])),
        ("catalog categories", len(state["categories"])),
        ("back-in-stock subscriptions", len(state["back_in_stock_subscriptions"])),
        ("back-in-stock emails", len(state["back_in_stock_emails"])),
        ("profiles", len(state["profiles"])),
        ("deleted profiles", len(state["deleted_profiles"])),
        *((f"jobs {status}", n) for status, n in state["jobs"].items()),
        ("calls throttled", state["throttled"]),
    ]
    rows = [[_cell(name), _cell(n)] for name, n in counts]
    calls = [[_cell(call), _cell(n)] for call, n in sorted(state["calls"].items())]
    return _page(
        "Klaviyo sandbox",
        "<p>A local look-alike of the Klaviyo API for demos and tests. "
        'See the <a href="/catalog">catalog</a> and the '
        '<a href="/back-in-stock">back-in-stock report</a>.</p>'
        + _table(["what", "count"], rows, len(rows))
        + _faults(state["faults"])
        + _failed_calls(state["failed_calls"])
        + "<h2>Calls</h2>"
        + _table(["call", "count"], calls, len(calls)),
    )


def _faults(faults: list[dict[str, Any]]) -> str:
    if not faults:
        return "<h2>Injected faults</h2><p>None: every call is answered normally.</p>"
    headers = ["mode", "status", "path prefix", "method", "calls left", "seconds left", "delay"]
    rows = [
        [
            f'<td class="fault">{escape(fault["mode"])}</td>',
            _cell(fault["status"] if fault["mode"] == "error" else None),
            _cell(fault["path_prefix"]),
            _cell(fault["method"] or "any"),
            _cell(fault["count"] if fault["count"] is not None else "until cleared"),
            _cell(fault.get("seconds_left")),
            _cell(fault["delay"] if fault["mode"] == "slow" else None),
        ]
        for fault in faults
    ]
    return f"<h2>Injected faults ({len(faults)})</h2>" + _table(headers, rows, len(rows))


def _failed_calls(failed: list[dict[str, Any]]) -> str:
    if not failed:
        return "<h2>Recent failed calls</h2><p>None.</p>"
    rows = [
        [
            _cell(call["at"]),
            _cell("dropped" if call["status"] is None else call["status"]),
            _cell(call["route"]),
            _cell(call["detail"]),
        ]
        for call in reversed(failed)
    ]
    return f"<h2>Recent failed calls (latest {len(rows)}, newest first)</h2>" + _table(
        ["at", "status", "call", "detail"], rows, len(rows)
    )


def _catalog(state: dict[str, Any]) -> str:
    items = list(state["items"].items())
    item_rows = [
        [
            _cell(external_id),
            _cell(item.get("title")),
            _cell(item.get("price")),
            f"<td>{_link(item.get('url'), LINK)}</td>",
            _cell(item.get("published")),
            _cell(item.get("categories")),
            f"<td>{_link(item.get('image_thumbnail_url') or item.get('image_full_url'), IMG)}</td>",
        ]
        for external_id, item in items[:MAX_ROWS]
    ]
    variants = list(state["variants"].items())
    variant_rows = [
        [
            _cell(external_id),
            _cell(variant.get("item")),
            _cell(variant.get("title")),
            _cell(variant.get("sku")),
            _cell(variant.get("price")),
            _cell(variant.get("inventory_quantity")),
            _cell(variant.get("inventory_policy")),
        ]
        for external_id, variant in variants[:MAX_ROWS]
    ]
    categories = [[_cell(k), _cell(c.get("name"))] for k, c in state["categories"].items()]
    return _page(
        "Catalog",
        f"<h2>Items ({len(items)})</h2>"
        + _table(
            ["external id", "title", "price", "url", "published", "categories", "image"],
            item_rows,
            len(items),
        )
        + f"<h2>Variants ({len(variants)})</h2>"
        + _table(
            [
                "external id",
                "item",
                "title",
                "sku",
                "price",
                "inventory_quantity",
                "inventory_policy",
            ],
            variant_rows,
            len(variants),
        )
        + f"<h2>Categories ({len(categories)})</h2>"
        + _table(["external id", "name"], categories[:MAX_ROWS], len(categories)),
    )


def _back_in_stock(state: dict[str, Any]) -> str:
    by_variant: dict[str, list[dict[str, Any]]] = {}
    for subscription in state["back_in_stock_subscriptions"]:
        by_variant.setdefault(subscription["variant_id"], []).append(subscription)
    ranked = sorted(by_variant.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    rows = []
    for variant_id, subscriptions in ranked[:MAX_ROWS]:
        external_id = variant_id.rsplit(":::", 1)[-1]
        variant = state["variants"].get(external_id)
        quantity = None if variant is None else variant.get("inventory_quantity")
        waiting = (
            "not in catalog"
            if variant is None
            else ("in stock" if (quantity or 0) > 0 else "waiting for stock")
        )
        emails = "<br>".join(
            f"{escape(str(s['email'] or ''))} <small>{escape(s['at'])} "
            f"{escape(', '.join(s['channels']))}</small>"
            for s in subscriptions
        )
        rows.append(
            [
                _cell(external_id),
                _cell(None if variant is None else variant.get("title")),
                _cell(quantity),
                _cell(waiting),
                _cell(len(subscriptions)),
                f"<td>{emails}</td>",
            ]
        )
    headers = ["variant", "title", "inventory_quantity", "status", "subscriptions", "subscribers"]
    return _page(
        "Back in stock",
        f"<p>{len(state['back_in_stock_subscriptions'])} subscriptions to "
        f"{len(by_variant)} variants. Klaviyo's flow emails the waiting subscribers when a "
        "variant's <code>inventory_quantity</code> rises above zero.</p>"
        + _table(headers, rows, len(ranked)),
    )


def _email(email: dict[str, Any]) -> str:
    """One email as a card: what the shopper would read."""
    figure = escape(str(email["inventory_quantity"]))
    meta = (
        f"<small>To {escape(str(email['to']))} · {escape(email['at'])} · variant "
        f"<code>{escape(email['variant'])}</code> (figure {figure})"
        f" · catalog item <code>{escape(email['display_item'])}</code> · Language "
        f"{escape(str(email['language']))} · Currency {escape(str(email['currency']))}</small>"
    )
    if email["skipped"]:
        skipped = escape(email["skipped"])
        return f'<div class="email">{meta}<p class="note">Not sent: {skipped}</p></div>'
    image = _link(email["image"], IMG.replace("<img ", '<img class="product" '))
    button = _link(email["url"], '<a href="{url}">' + escape(str(email["cta"])) + "</a>")
    price = f"<p><strong>{escape(email['price'])}</strong></p>" if email["price"] else ""
    return (
        f'<div class="email">{meta}<h3>{escape(str(email["subject"]))}</h3>{image}'
        f"<p>{escape(str(email['product_name']))}</p><p>{escape(str(email['body']))}</p>"
        f"{price}<p>{button}</p></div>"
    )


def _emails(state: dict[str, Any]) -> str:
    emails = state["back_in_stock_emails"]
    intro = (
        f"<p>{len(emails)} emails, newest first: what Klaviyo's back-in-stock flow would send with "
        "the README's template when a variant's <code>inventory_quantity</code> rises from 0, "
        "one per waiting subscriber, filled from the catalog item's <code>custom_metadata</code> "
        "and the profile's <code>Language</code> and <code>Currency</code>.</p>"
    )
    shown = list(reversed(emails))[:MAX_ROWS]
    note = f'<p class="note">Showing the latest {MAX_ROWS}.</p>' if len(emails) > MAX_ROWS else ""
    return _page("Back-in-stock emails", intro + note + "".join(_email(e) for e in shown))


PAGES = {
    "/": _index,
    "/catalog": _catalog,
    "/back-in-stock": _back_in_stock,
    "/emails": _emails,
}


def render(account: Account, method: str, path: str) -> tuple[int, str]:
    """(status, HTML) for a page."""
    view = PAGES.get(path.rstrip("/") or "/")
    if view is None or method != "GET":
        return 404, _page("Not found", f"<p>No page at <code>{escape(path)}</code>.</p>")
    return 200, view(account.snapshot())
