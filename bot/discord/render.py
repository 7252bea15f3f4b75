"""Pure rendering for Discord: alerts, digests and replies as API payloads, escaped and cut to Discord's limits."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from bot.alert_text import compact_line, extra_lines
from bot.buttons import STAMP_PATTERN, encode_stamp
from scout.models import Alert, Destination, Layout, Notice, SavedSearch, StoredAlert

# Discord's limits, from https://discord.com/developers/docs/resources/message#embed-object-embed-limits
# and #create-message. Discord counts UTF-16 code units, so every length here does too.
CONTENT_LIMIT = 2000
EMBED_TITLE_LIMIT = 256
EMBED_DESCRIPTION_LIMIT = 4096
EMBED_FIELDS_LIMIT = 25
EMBED_FIELD_NAME_LIMIT = 256
EMBED_FIELD_VALUE_LIMIT = 1024
EMBED_FOOTER_LIMIT = 2048
EMBED_AUTHOR_LIMIT = 256
EMBED_TOTAL_LIMIT = 6000  # title + description + field names and values + footer + author, over all embeds of a message
EMBEDS_PER_MESSAGE = 10
# https://discord.com/developers/docs/components/reference#button
BUTTON_LABEL_LIMIT = 80
BUTTON_URL_LIMIT = 512
CUSTOM_ID_LIMIT = 100
ACTION_ROWS_PER_MESSAGE = 5
BUTTONS_PER_ROW = 5
# https://discord.com/developers/docs/resources/message#create-message-jsonform-params: nonce is up to 25 characters.
NONCE_LIMIT = 25

EPHEMERAL = 1 << 6  # message flag: only the person who ran the command sees the reply
NO_MENTIONS: dict[str, Any] = {"parse": []}  # allowed_mentions that ping nobody, whatever the text says
ALERT_COLOUR = 0x2ECC71
NOTICE_COLOUR = 0x5865F2
ELLIPSIS = "\u2026"

# Persistent button ids: "dealscout:<action>:<search id>:<stamp>", the stamp a moment by which the search existed
# (bot.buttons); buttons posted before they carried one have none. The front end's views parse these same templates.
_SEARCH_BUTTON = r"(?P<search_id>[0-9]{1,18})(?::(?P<stamp>" + STAMP_PATTERN + "))?"
PAUSE_TEMPLATE = "dealscout:pause:" + _SEARCH_BUTTON
REMOVE_TEMPLATE = "dealscout:remove:" + _SEARCH_BUTTON
CONFIRM_REMOVE_TEMPLATE = "dealscout:remove-yes:" + _SEARCH_BUTTON
PAGE_TEMPLATE = r"dealscout:page:(?P<page>[0-9]{1,4}):(?P<everyone>[01])"

_INLINE = re.compile(r"([\\*_~`|\[\]()<>])")
_LINE_START = re.compile(r"(?m)^([ \t]*)([#\-+])")
_NUMBERED = re.compile(r"(?m)^([ \t]*)([0-9]+)\.(?=\s)")
_MASS_MENTION = re.compile(r"@(everyone|here)")
_ZERO_WIDTH_SPACE = "\u200b"
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _search_custom_id(action: str, search_id: int, existed_at: datetime | None) -> str:
    stamp = f":{encode_stamp(existed_at)}" if existed_at is not None else ""
    return f"dealscout:{action}:{search_id}{stamp}"


def pause_custom_id(search_id: int, existed_at: datetime | None) -> str:
    return _search_custom_id("pause", search_id, existed_at)


def remove_custom_id(search_id: int, existed_at: datetime | None) -> str:
    return _search_custom_id("remove", search_id, existed_at)


def confirm_remove_custom_id(search_id: int, existed_at: datetime | None) -> str:
    return _search_custom_id("remove-yes", search_id, existed_at)


def page_custom_id(page: int, everyone: bool) -> str:
    return f"dealscout:page:{page}:{int(everyone)}"


def alert_nonce(outbox_id: int) -> str:
    """The same outbox row always gets the same nonce, so Discord drops a resend of a message it already has."""
    return f"ds{outbox_id}"[:NONCE_LIMIT]


def digest_nonce(outbox_ids: Sequence[int]) -> str:
    """A digest's nonce names exactly its alerts: a digest must never be taken for a lone alert it starts with
    (Discord would answer with that one message and the rest would count as sent)."""
    digest = hashlib.sha256(",".join(map(str, outbox_ids)).encode()).hexdigest()
    return f"dg{digest}"[:NONCE_LIMIT]


def discord_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def neutralise_mentions(text: str) -> str:
    """`@everyone` and `@here` shown as text, not highlighted (pinging is off anyway through allowed_mentions)."""
    return _MASS_MENTION.sub("@" + _ZERO_WIDTH_SPACE + r"\1", text)


def escape_markdown(text: str) -> str:
    """Scraped text shown literally: no bold, links, headings, lists, quotes, mentions or custom emoji."""
    text = _CONTROL.sub("", text)
    text = _INLINE.sub(r"\\\1", text)
    text = _LINE_START.sub(r"\1\\\2", text)
    text = _NUMBERED.sub(r"\1\2\\.", text)
    return neutralise_mentions(text)


def plain(text: str) -> str:
    """Text for places Discord shows without markdown (footers, button labels): only mentions neutralised."""
    return neutralise_mentions(_CONTROL.sub("", text))


def cut(text: str, limit: int) -> str:
    """`text` within `limit` UTF-16 units, cut at a word boundary when one is near, ending in an ellipsis."""
    if discord_length(text) <= limit:
        return text
    if limit <= 1:
        return ELLIPSIS[:limit]
    budget = limit - 1
    head = text[:budget]
    while (over := discord_length(head) - budget) > 0:
        head = head[: -max(1, over // 2)]  # a character outside the BMP counts twice
    # Never leave a combining mark or joiner without what follows it.
    while head and (unicodedata.combining(head[-1]) or head[-1] in "\u200d\ufe0f"):
        head = head[:-1]
    space = head.rfind(" ")
    if space >= len(head) * 0.7:
        head = head[:space]
    # An odd run of trailing backslashes would escape the ellipsis: drop the dangling one.
    trailing = len(head) - len(head.rstrip("\\"))
    if trailing % 2:
        head = head[:-1]
    return head.rstrip() + ELLIPSIS


def escape_cut(text: str, limit: int) -> str:
    """Escaped and cut; the text is trimmed first, as escaping only ever makes it longer."""
    return cut(escape_markdown(text[: limit + 1]), limit)


def safe_url(url: str | None) -> str | None:
    """An http(s) URL Discord accepts in an embed or a link button, or None."""
    if not url:
        return None
    url = url.strip()
    if not re.match(r"^https?://[^\s/$.?#][^\s]*$", url, re.IGNORECASE):
        return None
    return url


def timestamp_tag(moment: datetime, style: str = "R") -> str:
    """A Discord timestamp: each reader sees it in their own time zone ("in 2 minutes", "3 hours ago")."""
    return f"<t:{int(moment.timestamp())}:{style}>"


def embed_length(embed: Mapping[str, Any]) -> int:
    """What counts towards the 6000-character total of a message."""
    total = discord_length(embed.get("title", "")) + discord_length(embed.get("description", ""))
    for item in embed.get("fields", ()):
        total += discord_length(item["name"]) + discord_length(item["value"])
    total += discord_length(embed.get("footer", {}).get("text", ""))
    total += discord_length(embed.get("author", {}).get("name", ""))
    return total


def _shrink(embed: dict[str, Any], budget: int) -> dict[str, Any]:
    """Cut the longest texts of one embed until it fits `budget`; fields go last, from the end."""
    embed = {**embed, "fields": [dict(item) for item in embed.get("fields", ())]}
    while embed_length(embed) > budget:
        over = embed_length(embed) - budget
        texts: list[tuple[int, str, int | None]] = [
            (discord_length(embed.get("description", "")), "description", None),
            (discord_length(embed.get("title", "")), "title", None),
            (discord_length(embed.get("footer", {}).get("text", "")), "footer", None),
        ]
        texts += [(discord_length(item["value"]), "field", i) for i, item in enumerate(embed["fields"])]
        size, kind, index = max(texts, key=lambda entry: entry[0])
        if size <= 16:
            if not embed["fields"]:
                break
            embed["fields"].pop()
            continue
        target = max(16, size - over)
        if kind == "field" and index is not None:
            embed["fields"][index]["value"] = cut(embed["fields"][index]["value"], target)
        elif kind == "footer":
            embed["footer"] = {**embed["footer"], "text": cut(embed["footer"]["text"], target)}
        else:
            embed[kind] = cut(embed[kind], target)
    if not embed["fields"]:
        embed.pop("fields")
    return embed


def fit_embeds(embeds: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """At most 10 embeds whose texts add up to at most 6000, each cut fairly."""
    chosen = list(embeds[:EMBEDS_PER_MESSAGE])
    if sum(embed_length(embed) for embed in chosen) <= EMBED_TOTAL_LIMIT:
        return chosen
    budget = EMBED_TOTAL_LIMIT // max(1, len(chosen))
    return [_shrink(embed, budget) for embed in chosen]


def _field(name: str, value: str, *, inline: bool = True) -> dict[str, Any]:
    return {"name": cut(name, EMBED_FIELD_NAME_LIMIT), "value": cut(value or "\u2014", EMBED_FIELD_VALUE_LIMIT),
            "inline": inline}


def render_price(alert: Alert) -> str:
    listing = alert.listing
    if listing.price is not None:
        return str(listing.price)
    return escape_cut(listing.price_text, EMBED_FIELD_VALUE_LIMIT) if listing.price_text else "No price shown"


def render_alert_embed(alert: Alert, *, marketplace_name: str, compact: bool = False) -> dict[str, Any]:
    """One listing as an embed: linked title, price, marketplace, location, posting time, picture, the search."""
    listing = alert.listing
    embed: dict[str, Any] = {"type": "rich", "color": ALERT_COLOUR,
                             "title": escape_cut(listing.title.strip(), EMBED_TITLE_LIMIT) or "(untitled listing)"}
    url = safe_url(listing.url)
    if url:
        embed["url"] = url
    fields = [_field("Price", render_price(alert)), _field("Marketplace", escape_markdown(marketplace_name))]
    if listing.location:
        fields.append(_field("Location", escape_cut(listing.location, EMBED_FIELD_VALUE_LIMIT)))
    if listing.posted_at is not None:
        fields.append(_field("Posted", timestamp_tag(listing.posted_at)))
        embed["timestamp"] = listing.posted_at.isoformat()
    if listing.condition and not compact:
        fields.append(_field("Condition", escape_cut(listing.condition, EMBED_FIELD_VALUE_LIMIT)))
    embed["fields"] = fields
    lines = extra_lines(alert)
    if lines:
        embed["description"] = escape_cut("\n".join(lines), EMBED_DESCRIPTION_LIMIT)
    image = safe_url(listing.image_url)
    if image:
        embed["thumbnail" if compact else "image"] = {"url": image}
    if alert.search_id is not None:
        footer = f"Search #{alert.search_id} \u00b7 {alert.search_query[:EMBED_FOOTER_LIMIT]}"
    else:
        footer = f"Matched \u201c{alert.search_query[:EMBED_FOOTER_LIMIT]}\u201d (search since removed)"
    embed["footer"] = {"text": cut(plain(footer), EMBED_FOOTER_LIMIT)}
    return embed


def _button(label: str, **extra: Any) -> dict[str, Any]:
    return {"type": 2, "label": cut(plain(label), BUTTON_LABEL_LIMIT), **extra}


def render_alert_components(alert: Alert) -> list[dict[str, Any]]:
    """Open the listing (a link), pause or remove the search it matched (persistent buttons)."""
    row: list[dict[str, Any]] = []
    url = safe_url(alert.listing.url)
    if url and len(url) <= BUTTON_URL_LIMIT:
        row.append(_button("Open listing", style=5, url=url))
    if alert.search_id is not None:
        # The search existed when the scan queued this alert.
        row.append(_button("Pause search", style=2, custom_id=pause_custom_id(alert.search_id, alert.queued_at)))
        row.append(_button("Remove search", style=4, custom_id=remove_custom_id(alert.search_id, alert.queued_at)))
    return [{"type": 1, "components": row}] if row else []


def _message(*, content: str = "", embeds: Sequence[dict[str, Any]] = (), components: Sequence[dict[str, Any]] = (),
             nonce: str | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {"content": cut(content, CONTENT_LIMIT), "embeds": fit_embeds(embeds),
                               "components": list(components)[:ACTION_ROWS_PER_MESSAGE],
                               "allowed_mentions": NO_MENTIONS}
    if nonce is not None:
        # enforce_nonce: Discord returns the message it already created for this nonce instead of a second one.
        payload.update(nonce=nonce, enforce_nonce=True)
    return payload


def render_alert_message(alert: Alert, *, marketplace_names: Mapping[str, str]) -> dict[str, Any]:
    """The create-message payload of one alert: an embed with buttons, or one line of text (compact layout)."""
    name = marketplace_names.get(alert.listing.marketplace, alert.listing.marketplace)
    if alert.layout is Layout.COMPACT:
        url = safe_url(alert.listing.url)
        # The link in angle brackets: Discord shows no preview card, so the line stays one line.
        tail = f" <{url}>" if url else ""
        line = escape_cut(compact_line(alert, marketplace_names), CONTENT_LIMIT - discord_length(tail))
        return _message(content=line + tail, nonce=alert_nonce(alert.outbox_id))
    return _message(embeds=[render_alert_embed(alert, marketplace_name=name)],
                    components=render_alert_components(alert), nonce=alert_nonce(alert.outbox_id))


def render_digest_message(alerts: Sequence[Alert], *, marketplace_names: Mapping[str, str]) -> dict[str, Any]:
    """Up to 10 alerts in one message, with pause/remove buttons for each search they matched (up to 5)."""
    alerts = list(alerts)[:EMBEDS_PER_MESSAGE]
    embeds = [render_alert_embed(a, marketplace_name=marketplace_names.get(a.listing.marketplace,
                                                                            a.listing.marketplace), compact=True)
              for a in alerts]
    # Each search with the moment its first alert here was queued, when it certainly existed.
    searches: dict[int, tuple[str, datetime | None]] = {}
    for alert in alerts:
        if alert.search_id is not None:
            searches.setdefault(alert.search_id, (alert.search_query, alert.queued_at))
    rows = [{"type": 1, "components": [_button(f"Pause #{sid}", style=2, custom_id=pause_custom_id(sid, queued)),
                                       _button(f"Remove #{sid}", style=4, custom_id=remove_custom_id(sid, queued))]}
            for sid, (_, queued) in list(searches.items())[:ACTION_ROWS_PER_MESSAGE]]
    queries = ", ".join(f"\u201c{escape_cut(query, 200)}\u201d" for query, _ in searches.values()) or "your searches"
    content = f"**{len(alerts)} new deals** for {queries}"
    return _message(content=content, embeds=embeds, components=rows,
                    nonce=digest_nonce([alert.outbox_id for alert in alerts]))


def render_outbox_notice(notice: Notice) -> dict[str, Any]:
    """An ops message or a summary from the outbox: plain text (titles in it are scraped), its row's nonce."""
    return _message(content=escape_markdown(notice.text), nonce=alert_nonce(notice.outbox_id))


def render_notice_message(text: str) -> dict[str, Any]:
    """A message we wrote ourselves (markdown allowed); scraped parts must already be escaped."""
    return _message(content=text)


def channel_tag(channel_id: str | int) -> str:
    return f"<#{channel_id}>"


def render_saved(search: SavedSearch, description: str, *, first_scan_at: datetime, baseline: bool) -> str:
    """The reply to /search add: what was saved, where alerts go, and when the first scan runs."""
    lines = [f"Saved search {escape_markdown(description)}.",
             f"Alerts go to {channel_tag(search.destination.target)}.",
             f"The first scan runs {timestamp_tag(first_scan_at)}."]
    if baseline:
        lines.append("It records what is listed now; you hear about listings that appear after that.")
    return "\n".join(lines)


def render_search_detail(search: SavedSearch, description: str, outcomes: Sequence[str]) -> dict[str, Any]:
    """/search show: the search, where its alerts go, its schedule and how each marketplace's last check went."""
    fields = [_field("Alerts go to", channel_tag(search.destination.target)),
              _field("Owner", f"<@{search.owner}>" if search.owner.isdigit() else escape_markdown(search.owner)),
              _field("Next scan", timestamp_tag(search.next_run_at))]
    if search.last_success_at is not None:
        fields.append(_field("Last successful scan", timestamp_tag(search.last_success_at)))
    if outcomes:
        fields.append(_field("Last check per marketplace", "\n".join(escape_markdown(line) for line in outcomes),
                             inline=False))
    return {"title": f"Search #{search.id}", "description": cut(escape_markdown(description), EMBED_DESCRIPTION_LIMIT),
            "color": NOTICE_COLOUR, "fields": fields}


def page_count(total: int, page_size: int) -> int:
    return max(1, -(-total // page_size))


def render_search_page(searches: Sequence[SavedSearch], descriptions: Mapping[int, str], *, page: int,
                       page_size: int, everyone: bool) -> dict[str, Any]:
    """One page of /search list as an embed; `page` counts from 1."""
    pages = page_count(len(searches), page_size)
    page = min(max(1, page), pages)
    shown = searches[(page - 1) * page_size : page * page_size]
    lines = []
    for search in shown:
        owner = f" \u00b7 <@{search.owner}>" if everyone and search.owner.isdigit() else ""
        lines.append(cut(f"{escape_markdown(descriptions[search.id])} \u2192 "
                         f"{channel_tag(search.destination.target)}{owner}", 600))
    who = "Searches in this server" if everyone else "Your searches in this server"
    text = "\n".join(lines) or "None yet. Add one with `/search add`."
    return {"title": f"{who} ({len(searches)})", "description": cut(text, EMBED_DESCRIPTION_LIMIT),
            "color": NOTICE_COLOUR, "footer": {"text": f"Page {page} of {pages}"}}


def render_page_buttons(page: int, pages: int, everyone: bool) -> list[dict[str, Any]]:
    if pages <= 1:
        return []
    return [{"type": 1, "components": [
        _button("Previous", style=2, custom_id=page_custom_id(max(1, page - 1), everyone), disabled=page <= 1),
        _button("Next", style=2, custom_id=page_custom_id(min(pages, page + 1), everyone), disabled=page >= pages),
    ]}]


def _masked_link(text: str, url: str | None) -> str:
    label = escape_markdown(text) or "(untitled)"
    link = safe_url(url)
    if not link:
        return label
    # Parentheses and spaces would end the link early.
    return f"[{label}]({link.replace('(', '%28').replace(')', '%29').replace(' ', '%20')})"


def render_deals(search: SavedSearch, deals: Iterable[StoredAlert]) -> dict[str, Any]:
    """/deals: the newest alerts of one search, newest first."""
    lines = []
    for deal in deals:
        listing = deal.listing
        price = str(listing.price) if listing.price else (escape_markdown(listing.price_text or "") or "no price")
        status = {"sent": "sent", "pending": "waiting", "dead": "not delivered"}.get(deal.status, deal.status)
        lines.append(cut(f"\u2022 {_masked_link(cut(listing.title, 120), listing.url)} \u2014 {price} \u2014 "
                         f"{status} {timestamp_tag(deal.created_at)}", 700))
    text = "\n".join(lines) or "No deals yet: alerts appear here once the search finds new listings."
    title = f"Newest deals for #{search.id} \u201c{escape_markdown(search.query)}\u201d"
    return {"title": cut(title, EMBED_TITLE_LIMIT),
            "description": cut(text, EMBED_DESCRIPTION_LIMIT), "color": NOTICE_COLOUR}


def render_gone_notice(searches: Sequence[SavedSearch], destination: Destination, reason: str) -> str:
    """The DM to an owner whose searches were paused because their channel can no longer be reached."""
    names = ", ".join(f"#{s.id} \u201c{escape_markdown(s.query)}\u201d" for s in searches)
    plural = "es" if len(searches) > 1 else ""
    first = searches[0].id if searches else 0
    return cut(
        f"Deal Scout paused your search{plural} {names}: alerts cannot reach {channel_tag(destination.target)} "
        f"({escape_markdown(reason)}).\nGive me access to that channel again and run `/search resume {first}`, or "
        f"add the search again in another channel with `/search add` and remove this one.",
        CONTENT_LIMIT,
    )
