"""Small Craigslist result pages (the server-rendered list with its ld+json block), built to order for drills."""

from __future__ import annotations

import json
from collections.abc import Iterable
from html import escape

_ROW = """<li class="cl-static-search-result" title="{title}">
<a href="https://{site}.craigslist.org/sss/d/{slug}/{id}.html"><div class="title">{title}</div>
<div class="details"><div class="price">${price}</div><div class="location">{site}</div></div></a></li>"""


def craigslist_results_page(items: Iterable[tuple[int, str, str]], *, site: str = "sfbay") -> str:
    """A search page holding (id, title, whole-dollar price) rows, newest first."""
    rows = list(items)
    ld = {"@type": "ItemList", "itemListElement": [
        {"position": str(n), "@type": "ListItem", "item": {
            "@type": "Product", "name": title, "image": [],
            "offers": {"@type": "Offer", "price": f"{price}.00", "priceCurrency": "USD"}}}
        for n, (_, title, price) in enumerate(rows)]}
    body = "\n".join(_ROW.format(id=n, title=escape(title), price=price, site=site,
                                 slug="-".join(title.lower().split())) for n, title, price in rows)
    return (
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>craigslist</title>"
        f"<script id=\"ld_searchpage_results\" type=\"application/ld+json\">{json.dumps(ld)}</script></head>"
        f"<body><ol class=\"cl-static-search-results\">{body}</ol></body></html>"
    )
