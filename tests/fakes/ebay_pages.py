"""Small eBay result pages in the s-card layout, built to order for engine tests and benchmarks."""

from __future__ import annotations

from collections.abc import Iterable
from html import escape

_CARD = """<li data-listingid="{id}" class="s-card s-card--horizontal">
<div class="su-media__image"><a href="https://www.ebay.com/itm/{id}?_skw=q&amp;hash=item{id}"><img class="s-card__image"
 src="https://i.ebayimg.com/images/g/{id}/s-l500.webp" alt=""></a></div>
<a class="su-link" href="https://www.ebay.com/itm/{id}?_skw=q&amp;hash=item{id}"><div role="heading" aria-level="3"
 class="s-card__title"><span>{title}</span><span class="clipped">Opens in a new window or tab</span></div></a>
<div class="s-card__attribute-row"><span class="s-card__price">${price}</span></div>
<div class="s-card__attribute-row"><span>Located in United States</span></div>
</li>"""


def ebay_results_page(items: Iterable[tuple[int, str, str]]) -> str:
    """A search page holding (id, title, price) cards, newest first."""
    cards = "\n".join(_CARD.format(id=n, title=escape(title), price=price) for n, title, price in items)
    return (
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>eBay</title></head><body>"
        "<div id=\"srp-river-results\"><ul class=\"srp-results srp-list clearfix\">"
        f"{cards}</ul></div></body></html>"
    )
