"""Small result pages built to order for the delivery, seller and description fields: eBay s-card and s-item
cards, Kleinanzeigen ad cards, and the JSON answers of the eBay Browse API, Facebook, Vinted and Reddit."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from html import escape

# -- eBay ----------------------------------------------------------------------------------------------------------

_SCARD = """<li data-listingid="{id}" class="s-card s-card--vertical"><div class="su-card-container">
<div class="su-media__image"><a href="https://{host}/itm/{id}"><img src="https://i.ebayimg.com/images/g/{id}/s-l500.webp" alt=""></a></div>
<div class="su-card-container__header"><a class="su-link" href="https://{host}/itm/{id}"><div role="heading" aria-level="3"
 class="s-card__title"><span>{title}</span><span class="clipped">Opens in a new window or tab</span></div></a></div>
<div class="su-card-container__attributes"><div class="su-card-container__attributes__primary">
<div class="s-card__attribute-row"><span class="su-styled-text primary bold large-1 s-card__price">{price}</span></div>
{rows}</div>{secondary}</div></div></li>"""
_ROW = '<div class="s-card__attribute-row">{spans}</div>'
_SPAN = '<span class="su-styled-text secondary large">{text}</span>'
_SECONDARY = '<div class="su-card-container__attributes__secondary">{rows}</div>'

_SITEM = """<li class="s-item"><div class="s-item__info clearfix">
<a class="s-item__link" href="https://{host}/itm/{id}"><h3 class="s-item__title">{title}</h3></a>
<div class="s-item__details clearfix"><div class="s-item__detail s-item__detail--primary"><span class="s-item__price">{price}</span></div>
{extra}</div></div></li>"""


def scard_row(*pieces: str) -> str:
    """One untyped attribute row; each piece is a span of its own, as eBay splits a seller's name from its rating."""
    return _ROW.format(spans="".join(_SPAN.format(text=escape(piece)) for piece in pieces))


def scard(
    item_id: int, title: str, price: str, rows: Iterable[str] = (), seller: Sequence[str] | None = None,
    *, host: str = "www.ebay.com", secondary: Iterable[str] = (),
) -> str:
    """An s-card whose primary rows read `rows` (texts), with the seller's row (its spans) in the secondary column
    below them, and any further secondary rows (texts)."""
    below = [scard_row(*seller)] if seller is not None else []
    below += [scard_row(text) for text in secondary]
    return _SCARD.format(
        id=item_id, host=host, title=escape(title), price=escape(price),
        rows="\n".join(scard_row(text) for text in rows),
        secondary=_SECONDARY.format(rows="".join(below)) if below else "",
    )


def sitem(
    item_id: int, title: str, price: str, *, shipping: str | None = None, seller: str | None = None,
    location: str | None = None, host: str = "www.ebay.co.uk",
) -> str:
    """A classic s-item card with its typed shipping, seller and location spans where given."""
    extra = []
    if location is not None:
        extra.append(f'<span class="s-item__location s-item__itemLocation">{escape(location)}</span>')
    if shipping is not None:
        extra.append(f'<span class="s-item__shipping s-item__logisticsCost">{escape(shipping)}</span>')
    if seller is not None:
        extra.append(f'<span class="s-item__seller-info"><span class="s-item__seller-info-text">{escape(seller)}'
                     "</span></span>")
    return _SITEM.format(id=item_id, host=host, title=escape(title), price=escape(price), extra="\n".join(extra))


def ebay_page(cards: Iterable[str], *, lang: str = "en") -> bytes:
    """A search page whose results list holds the given cards."""
    return (
        f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8"><title>lego | eBay</title></head><body>'
        '<div id="srp-river-results"><ul class="srp-results srp-grid clearfix">'
        + "\n".join(cards) + "</ul></div></body></html>"
    ).encode()


def browse_item(item_id: int, **fields: object) -> dict[str, object]:
    """An eBay Browse API item summary with an id, a title and a price, plus the given fields."""
    return {"itemId": f"v1|{item_id}|0", "legacyItemId": str(item_id), "title": f"Lego {item_id}",
            "price": {"value": "10.00", "currency": "USD"}, **fields}


def browse_answer(*items: dict[str, object]) -> bytes:
    return json.dumps({"total": len(items), "itemSummaries": list(items)}).encode()


# -- Kleinanzeigen -------------------------------------------------------------------------------------------------

_AD = """<li class="ad-listitem"><article class="aditem" data-adid="{id}" data-href="/s-anzeige/lego/{id}-23-1">
<div class="aditem-image"><img src="https://img.kleinanzeigen.de/api/v1/prod-ads/images/{id}?rule=$_2.AUTO" alt=""></div>
<div class="aditem-main"><div class="aditem-main--top"><div class="aditem-main--top--left">10115 Berlin</div>
<div class="aditem-main--top--right">Heute, 10:15</div></div>
<div class="aditem-main--middle"><h2 class="text-module-begin"><a class="ellipsis" href="/s-anzeige/lego/{id}-23-1">{title}</a></h2>
{description}<div class="aditem-main--middle--price-shipping">
<p class="aditem-main--middle--price-shipping--price">{price}</p>{shipping}</div></div>
<div class="aditem-main--bottom"><p class="text-module-end">{tags}</p></div></div></article></li>"""


def kleinanzeigen_card(
    ad_id: int, title: str, price: str = "50 €", *, description: str | None = None, shipping: str | None = None,
    tags: Iterable[str] = (), description_html: str | None = None,
) -> str:
    """An ad card; `description_html` puts markup of its own into the description snippet."""
    if description_html is None and description is not None:
        description_html = escape(description)
    return _AD.format(
        id=ad_id, title=escape(title), price=escape(price),
        description=(f'<p class="aditem-main--middle--description">{description_html}</p>'
                     if description_html is not None else ""),
        shipping=(f'<p class="aditem-main--middle--price-shipping--shipping">{escape(shipping)}</p>'
                  if shipping is not None else ""),
        tags="".join(f'<span class="simpletag">{escape(tag)}</span>' for tag in tags),
    )


def kleinanzeigen_page(cards: Iterable[str]) -> bytes:
    return (
        '<!DOCTYPE html><html lang="de"><head><meta charset="utf-8"><title>Lego | Kleinanzeigen</title></head><body>'
        '<div id="srchrslt-content"><ul id="srchrslt-adtable" class="itemlist">'
        + "\n".join(cards) + "</ul></div></body></html>"
    ).encode()


# -- Facebook, Vinted, Reddit --------------------------------------------------------------------------------------


def facebook_listing(listing_id: int, **fields: object) -> dict[str, object]:
    return {"id": str(listing_id), "marketplace_listing_title": f"Mixer {listing_id}",
            "listing_price": {"formatted_amount": "$45", "amount": "45.00"}, "is_sold": False, "is_pending": False,
            **fields}


def facebook_answer(*listings: dict[str, object]) -> bytes:
    """A GraphQL search answer holding the listings."""
    edges = [{"node": {"__typename": "MarketplaceFeedListingStoryObject", "listing": item}} for item in listings]
    return json.dumps({"data": {"marketplace_search": {"feed_units": {"edges": edges}}}}).encode()


def vinted_item(item_id: int, **fields: object) -> dict[str, object]:
    return {"id": item_id, "title": f"Nike {item_id}", "price": {"amount": "20.0", "currency_code": "PLN"},
            "is_visible": True, **fields}


def vinted_catalog(*items: dict[str, object]) -> bytes:
    return json.dumps({"items": list(items), "code": 0}).encode()


def reddit_post(n: int, **fields: object) -> dict[str, object]:
    return {"id": f"p{n}", "title": f"[GPU] Card {n} - $499", "permalink": f"/r/buildapcsales/comments/p{n}/x/",
            "created_utc": 1700000000 + n, "subreddit": "buildapcsales", **fields}


def reddit_listing(*posts: dict[str, object]) -> bytes:
    return json.dumps({"kind": "Listing", "data": {"children": [{"kind": "t3", "data": p} for p in posts]}}).encode()
