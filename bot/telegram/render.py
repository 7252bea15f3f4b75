"""Pure Telegram rendering: alerts, digests and deal lists as escaped HTML within Telegram's limits, and button data."""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.alert_text import compact_line, extra_lines
from bot.buttons import encode_stamp, parse_stamp
from scout.models import Alert, Layout, Listing, StoredAlert

# Bot API limits, counted after entity parsing (https://core.telegram.org/bots/api#sendmessage, #sendphoto).
MESSAGE_LIMIT = 4096
CAPTION_LIMIT = 1024
# callback_data may hold 1-64 bytes (https://core.telegram.org/bots/api#inlinekeyboardbutton).
CALLBACK_DATA_LIMIT = 64
CALLBACK_PREFIX = "ds"
BUTTON_ACTIONS = ("pause", "resume", "remove")
# A title cut shorter than this stops saying what the item is; other fields give way first.
MIN_TITLE = 40
ELLIPSIS = "\u2026"
_SAFE_URL = re.compile(r"^https?://[^\s<>\"]+$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Button:
    """An inline keyboard button: a link (`url`) or a callback (`data`)."""

    text: str
    url: str | None = None
    data: str | None = None


Keyboard = tuple[tuple[Button, ...], ...]


@dataclass(frozen=True, slots=True)
class RenderedAlert:
    html: str
    photo_url: str | None
    keyboard: Keyboard


@dataclass
class _Piece:
    """A run of text and the tags around it; text is escaped only when the HTML is built, after any cut."""

    text: str
    before: str = ""
    after: str = ""
    shrink: int = 0  # 0: never cut; higher numbers are cut first
    floor: int = 0  # shortest the text may be cut to


def utf16_len(text: str) -> int:
    """Telegram counts message length in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def safe_url(url: str | None) -> str | None:
    """Only http(s) links go into hrefs and buttons: anything else would be refused or could mislead."""
    return url if url and len(url) <= 2048 and _SAFE_URL.match(url) else None


def cut(text: str, limit: int) -> str:
    """`text` in at most `limit` UTF-16 units, ending in an ellipsis, never splitting a character or a pair."""
    if utf16_len(text) <= limit:
        return text
    if limit <= 0:
        return ""
    kept, used = [], 0
    for char in text:
        size = utf16_len(char)
        if used + size > limit - 1:
            break
        kept.append(char)
        used += size
    shortened = "".join(kept)
    # End at a word boundary when one is near, so the cut reads as deliberate.
    space = shortened.rfind(" ")
    mid_word = not text[len(shortened)].isspace()
    if mid_word and space >= len(shortened) - 15 and space > len(shortened) // 2:
        shortened = shortened[:space]
    return shortened.rstrip() + ELLIPSIS


def _fit(pieces: list[_Piece], limit: int) -> str:
    """Cut the most expendable pieces until the visible text fits, then build the HTML."""
    for rank in sorted({p.shrink for p in pieces if p.shrink}, reverse=True):
        excess = sum(utf16_len(p.text) for p in pieces) - limit
        if excess <= 0:
            break
        group = [p for p in pieces if p.shrink == rank]
        sizes = [utf16_len(p.text) for p in group]

        def saved(cap: int, group: list[_Piece] = group, sizes: list[int] = sizes) -> int:
            return sum(size - max(p.floor, min(size, cap)) for p, size in zip(group, sizes))

        # The longest common cap that saves enough, so pieces of one rank (digest titles) are cut alike.
        low, high = 0, max(sizes)
        while low < high:
            middle = (low + high + 1) // 2
            low, high = (middle, high) if saved(middle) >= excess else (low, middle - 1)
        for piece, size in zip(group, sizes):
            room = max(piece.floor, min(size, low))
            if room < size:
                piece.text = cut(piece.text, room)
    excess = sum(utf16_len(p.text) for p in pieces) - limit
    if excess > 0:
        # Only fixed text is left to cut: drop whole pieces from the end, so no tag is ever left half open.
        while pieces and excess > 0:
            excess -= utf16_len(pieces.pop().text)
    return "".join(f"{p.before}{html.escape(p.text, quote=False)}{p.after}" for p in pieces)


def _attr(url: str) -> str:
    return html.escape(url, quote=False).replace('"', "&quot;")


def _price(listing: Listing) -> str:
    if listing.price is not None:
        return str(listing.price)
    return " ".join((listing.price_text or "").split()) or "no price shown"


def _market(listing: Listing, names: Mapping[str, str] | None) -> str:
    return (names or {}).get(listing.marketplace, listing.marketplace)


def render_alert(alert: Alert, *, marketplace_names: Mapping[str, str] | None = None) -> RenderedAlert:
    """One alert: a photo with an HTML caption when there is an image, else a text message; buttons below."""
    listing = alert.listing
    link = safe_url(listing.url)
    if alert.layout is Layout.COMPACT:  # one line of text, no picture, no buttons
        pieces = [_Piece(compact_line(alert, marketplace_names), shrink=1, floor=MIN_TITLE)]
        if link:
            pieces += [_Piece(" "), _Piece("open", f'<a href="{_attr(link)}">', "</a>")]
        return RenderedAlert(_fit(pieces, MESSAGE_LIMIT), None, ())
    photo = safe_url(listing.image_url)
    pieces = [_Piece(f"{line}\n", "<i>", "</i>", shrink=2, floor=20) for line in extra_lines(alert)]
    pieces += [
        _Piece(" ".join(listing.title.split()) or "(untitled)", "<b>", "</b>", shrink=3, floor=MIN_TITLE),
        _Piece(f"\n\U0001f4b0 {_price(listing)} \u00b7 {_market(listing, marketplace_names)}", shrink=1, floor=30),
    ]
    if listing.location:
        pieces.append(_Piece(f"\n\U0001f4cd {' '.join(listing.location.split())}", shrink=2, floor=20))
    if listing.posted_at:
        pieces.append(_Piece(f"\n\U0001f552 posted {_when(listing.posted_at)}"))
    if alert.search_id is not None:
        pieces.append(_Piece(f"\n\U0001f50e #{alert.search_id} \u201c{alert.search_query}\u201d", shrink=2, floor=12))
    if link:
        pieces.append(_Piece("\n"))
        pieces.append(_Piece("Open listing", f'<a href="{_attr(link)}">', "</a>"))
    text = _fit(pieces, CAPTION_LIMIT if photo else MESSAGE_LIMIT)
    # The search existed when the scan queued this alert.
    return RenderedAlert(text, photo, build_alert_keyboard(alert.search_id, link, existed_at=alert.queued_at))


def build_alert_keyboard(search_id: int | None, url: str | None, *, existed_at: datetime | None = None,
                         paused: bool = False, removed: bool = False) -> Keyboard:
    """Open (a link), then pause or resume and remove the search; only the link once the search is removed.

    `existed_at`: a moment by which the search existed, carried by its buttons (see bot.buttons).
    """
    rows: list[tuple[Button, ...]] = []
    if url:
        rows.append((Button("\U0001f517 Open listing", url=url),))
    if search_id is not None and not removed:
        toggle = Button(f"\u25b6\ufe0f Resume #{search_id}", data=callback_data("resume", search_id, existed_at)) \
            if paused else Button(f"\u23f8 Pause #{search_id}", data=callback_data("pause", search_id, existed_at))
        rows.append((toggle, Button(f"\U0001f5d1 Remove #{search_id}",
                                    data=callback_data("remove", search_id, existed_at))))
    return tuple(rows)


@dataclass(frozen=True, slots=True)
class ButtonPress:
    """What a button of ours asks: the action, the search and, unless it predates them, the search's stamp."""

    action: str
    search_id: int
    stamp: datetime | None


def callback_data(action: str, search_id: int, existed_at: datetime | None) -> str:
    """`ds:pause:12:19ad...`: all a button needs, so buttons keep working after a restart."""
    stamp = f":{encode_stamp(existed_at)}" if existed_at is not None else ""
    data = f"{CALLBACK_PREFIX}:{action}:{search_id}{stamp}"
    if action not in BUTTON_ACTIONS or len(data.encode()) > CALLBACK_DATA_LIMIT:
        raise ValueError(f"cannot make a button for {action!r} #{search_id}")
    return data


def parse_callback_data(data: str | None) -> ButtonPress | None:
    """What a button of ours asks (`ds:pause:12` from before buttons carried a stamp too), or None for anything
    else."""
    parts = (data or "").split(":")
    if len(parts) not in (3, 4) or parts[0] != CALLBACK_PREFIX or parts[1] not in BUTTON_ACTIONS:
        return None
    if not parts[2].isdigit() or not 0 < int(parts[2]) < 2**31:
        return None
    stamp = parse_stamp(parts[3]) if len(parts) == 4 else None
    if len(parts) == 4 and stamp is None:
        return None
    return ButtonPress(parts[1], int(parts[2]), stamp)


def render_digest(alerts: Sequence[Alert], *, marketplace_names: Mapping[str, str] | None = None) -> str:
    """Several alerts in one message, each linked; titles share what room the limit leaves."""
    queries = {(a.search_id, a.search_query) for a in alerts}
    head = f"\U0001f4e6 {len(alerts)} new deals"
    if len(queries) == 1 and alerts[0].search_id is not None:
        head += f" for #{alerts[0].search_id} \u201c{alerts[0].search_query}\u201d"
    pieces = [_Piece(head, "<b>", "</b>", shrink=1, floor=20)]
    for number, alert in enumerate(alerts, 1):
        listing = alert.listing
        link = safe_url(listing.url)
        title = " ".join(listing.title.split()) or "(untitled)"
        pieces.append(_Piece(f"\n{number}. "))
        pieces.append(_Piece(title, f'<a href="{_attr(link)}">' if link else "", "</a>" if link else "",
                             shrink=2, floor=25))
        tail = f" \u2014 {_price(listing)} \u00b7 {_market(listing, marketplace_names)}"
        if len(queries) > 1 and alert.search_id is not None:
            tail += f" \u00b7 #{alert.search_id}"
        pieces.append(_Piece(tail, shrink=1, floor=12))
    return _fit(pieces, MESSAGE_LIMIT)


def render_deals(search_id: int, deals: Sequence[StoredAlert]) -> str:
    """/deals: the latest alerts of one search, newest first, each linked."""
    if not deals:
        return f"Search #{search_id} has not found anything new yet."
    pieces = [_Piece(f"Latest deals of #{search_id}:", "<b>", "</b>")]
    for deal in deals:
        link = safe_url(deal.listing.url)
        state = "" if deal.status == "sent" else f" ({deal.status})"
        pieces.append(_Piece(f"\n\u2022 {deal.created_at:%b %d %H:%M} "))
        pieces.append(_Piece(" ".join(deal.listing.title.split()) or "(untitled)",
                             f'<a href="{_attr(link)}">' if link else "", "</a>" if link else "", shrink=2, floor=25))
        pieces.append(_Piece(f" \u2014 {_price(deal.listing)}{state}", shrink=1, floor=12))
    return _fit(pieces, MESSAGE_LIMIT)


def render_search_detail(description: str, outcomes: Sequence[str]) -> str:
    """/show: the search described, then how each of its marketplaces' last check went, within one message."""
    pieces = [_Piece(description, shrink=2, floor=200), _Piece("\n"), _Piece("Last checks", "<b>", "</b>")]
    pieces += [_Piece(f"\n\u2022 {line}", shrink=1, floor=40) for line in outcomes]
    return _fit(pieces, MESSAGE_LIMIT)


def render_plain(text: str, *, limit: int = MESSAGE_LIMIT) -> str:
    """Plain text (a /history summary) as escaped HTML of at most `limit` visible units: CAPTION_LIMIT under a
    picture, MESSAGE_LIMIT alone."""
    return _fit([_Piece(text, shrink=1, floor=1)], limit)


def render_lines(head: str, lines: Sequence[str], *, more: str = "\u2026 and {n} more") -> str:
    """A heading and plain lines, escaped, as many as fit in one message, then a count of the rest."""
    body = f"<b>{html.escape(head, quote=False)}</b>"
    for index, line in enumerate(lines):
        entry = "\n" + html.escape(line, quote=False)
        rest = len(lines) - index
        tail = "\n" + more.format(n=rest - 1) if rest > 1 else ""
        if utf16_len(html.unescape(body + entry + tail)) > MESSAGE_LIMIT - 50:
            return body + "\n" + html.escape(more.format(n=rest), quote=False)
        body += entry
    return body


def _when(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M} {moment.tzname() or 'UTC'}"
