"""Small Kleinanzeigen result pages (the srchrslt ad list), built to order for drills."""

from __future__ import annotations

from collections.abc import Iterable
from html import escape

_CARD = """<li class="ad-listitem"><article class="aditem" data-adid="{id}" data-href="/s-anzeige/{slug}/{id}-23-3331">
<div class="aditem-main"><div class="aditem-main--top"><div class="aditem-main--top--left">10115 Berlin</div>
<div class="aditem-main--top--right">Heute, 10:15</div></div><div class="aditem-main--middle">
<h2><a class="ellipsis" href="/s-anzeige/{slug}/{id}-23-3331">{title}</a></h2>
<p class="aditem-main--middle--price-shipping--price">{price} &#8364;</p></div></div></article></li>"""


def kleinanzeigen_results_page(items: Iterable[tuple[int, str, str]]) -> str:
    """A search page holding (id, title, whole-euro price) cards, newest first."""
    cards = "\n".join(_CARD.format(id=n, title=escape(title), price=price, slug="-".join(title.lower().split()))
                      for n, title, price in items)
    return (
        "<!DOCTYPE html><html lang=\"de\"><head><meta charset=\"utf-8\"><title>Kleinanzeigen</title></head><body>"
        "<div id=\"srchrslt-content\"><div id=\"srchrslt-results\"><ul id=\"srchrslt-adtable\" class=\"itemlist\">"
        f"{cards}</ul></div></div></body></html>"
    )
