"""Pure rendering for Discord: escaping, mention suppression, and every limit respected by cutting, never by failing."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from bot.buttons import encode_stamp
from bot.discord import render
from bot.discord.render import (
    CONTENT_LIMIT,
    EMBED_DESCRIPTION_LIMIT,
    EMBED_FIELD_NAME_LIMIT,
    EMBED_FIELD_VALUE_LIMIT,
    EMBED_FOOTER_LIMIT,
    EMBED_TITLE_LIMIT,
    EMBED_TOTAL_LIMIT,
    EMBEDS_PER_MESSAGE,
    cut,
    discord_length,
    embed_length,
    escape_markdown,
    render_alert_message,
    render_digest_message,
)
from scout.models import Alert, Destination, Listing, Money

NAMES = {"fakebay": "FakeBay"}


def alert(title: str = "Lego Technic 42056", *, outbox_id: int = 7, search_id: int | None = 3,
          queued_at: datetime | None = None, **extra: Any) -> Alert:
    fields: dict[str, Any] = {"marketplace": "fakebay", "external_id": str(outbox_id), "title": title,
                              "url": f"https://fakebay.test/itm/{outbox_id}", "price": Money(Decimal("199.99"), "USD")}
    fields.update(extra)
    return Alert(outbox_id=outbox_id, destination=Destination("discord", "1"), listing=Listing(**fields),
                 search_id=search_id, search_query="lego technic", queued_at=queued_at)


@pytest.mark.parametrize(("raw", "shown"), [
    ("**bold** _it_ ~~gone~~ `code` ||spoiler||", r"\*\*bold\*\* \_it\_ \~\~gone\~\~ \`code\` \|\|spoiler\|\|"),
    ("[free](https://evil.example)", r"\[free\]\(https://evil.example\)"),
    ("# Heading\n- item\n> quote\n1. first", "\\# Heading\n\\- item\n\\> quote\n1\\. first"),
    ("ping <@123> <@&456> <#789> <:emoji:1>", r"ping \<@123\> \<@&456\> \<#789\> \<:emoji:1\>"),
    ("@everyone @here look", "@\u200beveryone @\u200bhere look"),
    ("back\\slash", "back\\\\slash"),
    ("RTX 3080 - 10GB", "RTX 3080 - 10GB"),
])
def test_escaping(raw: str, shown: str) -> None:
    assert escape_markdown(raw) == shown


def test_cut_respects_utf16_length_words_and_escapes() -> None:
    assert cut("short", 10) == "short"
    text = "word " * 100
    result = cut(text, 50)
    assert discord_length(result) <= 50 and result.endswith("word\u2026")
    emoji = "\U0001f3ae" * 300  # each is two UTF-16 units
    assert discord_length(cut(emoji, 256)) <= 256
    escaped = escape_markdown("*" * 300)
    trimmed = cut(escaped, 256)
    assert discord_length(trimmed) <= 256
    body = trimmed.removesuffix("\u2026")
    assert (len(body) - len(body.rstrip("\\"))) % 2 == 0, "a lone trailing backslash would escape the ellipsis"


def test_an_alert_has_everything_the_issue_asks_for() -> None:
    posted = datetime(2026, 11, 28, 11, 30, tzinfo=UTC)
    payload = render_alert_message(alert(location="Oakland, CA", image_url="https://img.test/1.jpg",
                                         posted_at=posted, condition="Used"), marketplace_names=NAMES)
    [embed] = payload["embeds"]
    assert embed["title"] == "Lego Technic 42056" and embed["url"] == "https://fakebay.test/itm/7"
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert fields == {"Price": "199.99 USD", "Marketplace": "FakeBay", "Location": "Oakland, CA",
                      "Posted": f"<t:{int(posted.timestamp())}:R>", "Condition": "Used"}
    assert embed["image"] == {"url": "https://img.test/1.jpg"}
    assert embed["footer"]["text"] == "Search #3 \u00b7 lego technic"
    assert embed["timestamp"] == posted.isoformat()
    [row] = payload["components"]
    assert [(b["style"], b.get("url") or b.get("custom_id")) for b in row["components"]] == [
        (5, "https://fakebay.test/itm/7"), (2, "dealscout:pause:3"), (4, "dealscout:remove:3")]
    assert payload["allowed_mentions"] == {"parse": []}
    assert (payload["nonce"], payload["enforce_nonce"]) == ("ds7", True)
    assert render_alert_message(alert(), marketplace_names=NAMES)["nonce"] == "ds7", "the nonce is deterministic"


def test_unsafe_urls_are_dropped_and_long_ones_lose_only_the_button() -> None:
    payload = render_alert_message(alert(url="javascript:alert(1)", image_url="file:///etc/passwd"),
                                   marketplace_names=NAMES)
    [embed] = payload["embeds"]
    assert "url" not in embed and "image" not in embed
    assert [b["custom_id"] for b in payload["components"][0]["components"]] == ["dealscout:pause:3",
                                                                                 "dealscout:remove:3"]
    long_url = "https://fakebay.test/itm/7?" + "x" * 600
    payload = render_alert_message(alert(url=long_url), marketplace_names=NAMES)
    assert payload["embeds"][0]["url"] == long_url
    assert all(b["style"] != 5 for b in payload["components"][0]["components"])


def test_an_alert_of_a_removed_search_has_no_search_buttons() -> None:
    payload = render_alert_message(alert(search_id=None), marketplace_names=NAMES)
    assert [b["style"] for b in payload["components"][0]["components"]] == [5]
    assert "search since removed" in payload["embeds"][0]["footer"]["text"]


def test_mentions_in_scraped_text_ping_nobody() -> None:
    hostile = alert("@everyone FREE <@123456789012345678> @here", location="<@&42> @everyone",
                    price=None, price_text="@here 10$")
    for payload in (render_alert_message(hostile, marketplace_names=NAMES),
                    render_digest_message([hostile, hostile], marketplace_names=NAMES)):
        assert payload["allowed_mentions"] == {"parse": []}
        for text in _texts(payload):
            assert "@everyone" not in text and "@here" not in text
            assert not re.search(r"(?<!\\)<@", text), text


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for item in value.values() for text in _texts(item)]
    if isinstance(value, list):
        return [text for item in value for text in _texts(item)]
    return []


def _limits_hold(payload: dict[str, Any]) -> None:
    assert discord_length(payload["content"]) <= CONTENT_LIMIT
    assert len(payload["embeds"]) <= EMBEDS_PER_MESSAGE
    assert sum(embed_length(e) for e in payload["embeds"]) <= EMBED_TOTAL_LIMIT
    for embed in payload["embeds"]:
        assert discord_length(embed.get("title", "")) <= EMBED_TITLE_LIMIT
        assert discord_length(embed.get("description", "")) <= EMBED_DESCRIPTION_LIMIT
        assert discord_length(embed.get("footer", {}).get("text", "")) <= EMBED_FOOTER_LIMIT
        for item in embed.get("fields", []):
            assert discord_length(item["name"]) <= EMBED_FIELD_NAME_LIMIT
            assert 0 < discord_length(item["value"]) <= EMBED_FIELD_VALUE_LIMIT
    assert len(payload["components"]) <= render.ACTION_ROWS_PER_MESSAGE
    for row in payload["components"]:
        assert len(row["components"]) <= render.BUTTONS_PER_ROW
        for button in row["components"]:
            assert len(button["label"]) <= render.BUTTON_LABEL_LIMIT
            assert len(button.get("custom_id", "")) <= render.CUSTOM_ID_LIMIT


def test_huge_fields_are_cut_within_every_limit() -> None:
    huge = alert("T" * 10_000, location="L" * 5000, price=None, price_text="P" * 5000, condition="C" * 5000)
    huge = Alert(huge.outbox_id, huge.destination, huge.listing, 3, "Q" * 5000)
    single = render_alert_message(huge, marketplace_names=NAMES)
    _limits_hold(single)
    assert single["embeds"][0]["title"].endswith("\u2026")
    digest = render_digest_message([Alert(n, huge.destination, huge.listing, n, "Q" * 5000) for n in range(1, 13)],
                                   marketplace_names=NAMES)
    _limits_hold(digest)
    assert len(digest["embeds"]) == 10 and len(digest["components"]) == 5


def test_random_unicode_never_breaks_a_limit() -> None:
    rng = random.Random(20261128)
    alphabet = "abc *_~`|[]()<>#-@\\\n\u00e9\u0301\u200d\U0001f3ae\U0001f468\u200d\U0001f469 everyone"
    for _ in range(40):
        def text(limit: int) -> str:
            return "".join(rng.choices(alphabet, k=rng.randint(0, limit)))

        alerts = [Alert(n, Destination("discord", "1"),
                        Listing("fakebay", str(n), text(3000), "https://x.test/" + text(20).replace(" ", ""),
                                None, text(3000), text(2000), None, None, text(500)), n, text(300))
                  for n in range(1, rng.randint(2, 12))]
        _limits_hold(render_alert_message(alerts[0], marketplace_names=NAMES))
        _limits_hold(render_digest_message(alerts, marketplace_names=NAMES))


def test_digest_lists_each_search_once_with_its_buttons() -> None:
    alerts = [alert(f"set {n}", outbox_id=10 + n, search_id=3 if n < 3 else 4) for n in range(5)]
    payload = render_digest_message(alerts, marketplace_names=NAMES)
    assert payload["content"].startswith("**5 new deals**")
    assert [row["components"][0]["custom_id"] for row in payload["components"]] == ["dealscout:pause:3",
                                                                                     "dealscout:pause:4"]
    assert all("thumbnail" not in e or e["thumbnail"] for e in payload["embeds"])


def test_a_digest_nonce_is_never_a_lone_alerts() -> None:
    """Regression: a digest starting with alert 10 used alert 10's nonce, so if alert 10 alone had reached Discord
    (its answer lost), Discord answered the digest with that one message and nine alerts counted as sent unseen."""
    alerts = [alert(f"set {n}", outbox_id=10 + n) for n in range(3)]
    digest = render_digest_message(alerts, marketplace_names=NAMES)["nonce"]
    assert digest != render_alert_message(alerts[0], marketplace_names=NAMES)["nonce"]
    assert digest == render_digest_message(alerts, marketplace_names=NAMES)["nonce"], "deterministic"
    assert digest != render_digest_message(alerts[:2], marketplace_names=NAMES)["nonce"]
    assert len(digest) <= render.NONCE_LIMIT


def test_search_buttons_carry_when_their_search_existed() -> None:
    """A button names its search by id and by a moment the search existed (see bot.buttons), within Discord's 100
    characters; in a digest, each search's first alert gives that moment."""
    first, later = datetime(2026, 11, 28, 12, 0, tzinfo=UTC), datetime(2026, 11, 28, 13, 0, tzinfo=UTC)
    alerts = [alert("a", outbox_id=1, search_id=3, queued_at=first), alert("b", outbox_id=2, search_id=3,
                                                                            queued_at=later),
              alert("c", outbox_id=3, search_id=10**18 - 1, queued_at=later)]
    payload = render_digest_message(alerts, marketplace_names=NAMES)
    ids = [button["custom_id"] for row in payload["components"] for button in row["components"]]
    assert ids == [f"dealscout:pause:3:{encode_stamp(first)}", f"dealscout:remove:3:{encode_stamp(first)}",
                   f"dealscout:pause:{10**18 - 1}:{encode_stamp(later)}",
                   f"dealscout:remove:{10**18 - 1}:{encode_stamp(later)}"]
    assert re.fullmatch(render.PAUSE_TEMPLATE, ids[0]) and re.fullmatch(render.REMOVE_TEMPLATE, ids[-1])
    longest = render.confirm_remove_custom_id(10**18 - 1, datetime(2500, 1, 1, tzinfo=UTC))
    assert re.fullmatch(render.CONFIRM_REMOVE_TEMPLATE, longest) and len(longest) <= render.CUSTOM_ID_LIMIT
