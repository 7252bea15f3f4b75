"""Reddit listing JSON (a subreddit's new posts) -> Listings, price read from titles, expired deals left out; pure."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

from scout.errors import ParseError
from scout.models import Listing
from scrapers.base import ScrapeResult
from scrapers.pricetext import find_price

log = logging.getLogger(__name__)

MARKETPLACE = "reddit"
SITE = "https://www.reddit.com"
DEFAULT_CURRENCY = "USD"
# Deal subreddits of other countries write "$" for their own dollar; the post's subreddit settles it.
SUBREDDIT_CURRENCIES = {"bapcsalescanada": "CAD", "bapcsalesaustralia": "AUD", "bapcsalesuk": "GBP",
                        "bapcsalesnz": "NZD", "canadianhardwareswap": "CAD", "gamedealscanada": "CAD"}
# Flair (or a title tag) with these words marks a deal that is over. Moderators of the deal subreddits set
# "Expired", "Sold out" or "Out of stock"; buyers' hardware-swap boards use "Closed" and "Sold".
_OVER = re.compile(r"\b(?:expired|sold\s*out|out\s*of\s*stock|oos|deal\s*over|dead|ended|closed|sold)\b", re.IGNORECASE)
# The thumbnail field holds these words instead of a URL when a post has no picture.
_NO_THUMBNAIL = frozenset({"", "self", "default", "nsfw", "spoiler", "image"})
# What Reddit answers instead of JSON when it refuses a client: its HTML block pages.
_BLOCK_MARKERS = ("whoa there, pardner", "blocked by network security", "you've been blocked", "too many requests",
                  "our cdn was unable to reach", "captcha")


def parse_listing(body: bytes | str | dict[str, Any]) -> ScrapeResult:
    """Classify and parse a listing answer (/r/<sub>/new.json): the posts that are still live deals."""
    if isinstance(body, dict):
        payload: Any = body
    else:
        raw = body.encode() if isinstance(body, str) else body
        if not raw.strip():
            raise ParseError("empty Reddit answer")
        try:
            payload = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as err:
            head = raw[:65536].decode("utf-8", errors="replace").casefold()
            for marker in _BLOCK_MARKERS:
                if marker in head:
                    return ScrapeResult.blocked(f"Reddit answered a block page ({marker!r}) instead of JSON")
            raise ParseError(f"Reddit answer is not JSON: {err}") from err
    if isinstance(payload, dict) and "error" in payload and "data" not in payload:
        # {"message": "Forbidden", "error": 403, "reason": "private"} and the like, sent with a 200 by some proxies.
        return ScrapeResult.blocked(f"Reddit refused: {payload.get('error')} {payload.get('reason') or ''}".strip())
    try:
        if payload["kind"] != "Listing":
            raise ParseError(f"Reddit answer is a {payload['kind']!r}, not a Listing")
        children = payload["data"]["children"]
    except (KeyError, TypeError) as err:
        raise ParseError("Reddit answer has no data.children: the format changed") from err
    if not isinstance(children, list):
        raise ParseError("Reddit data.children is not a list")
    posts = [child.get("data") for child in children if isinstance(child, dict) and child.get("kind") == "t3"]
    if children and not posts:
        if all(isinstance(child, dict) and child.get("kind") == "t5" for child in children):
            # Reddit redirects a subreddit that does not exist to a search for subreddits with similar names.
            raise ParseError("no such subreddit: Reddit answered with a list of subreddits")
        raise ParseError(f"{len(children)} Reddit children but no posts (t3) among them")
    listings = []
    seen: set[str] = set()
    undecoded = 0
    for post in posts:
        listing = _post_listing(post) if isinstance(post, dict) else None
        if listing is None:
            undecoded += not isinstance(post, dict) or not _is_over(post)
            continue
        if listing.external_id not in seen:
            seen.add(listing.external_id)
            listings.append(listing)
    if posts and undecoded == len(posts):
        raise ParseError(f"{len(posts)} Reddit posts but none had an id, a title and a permalink")
    return ScrapeResult.of(listings)


def _post_listing(post: dict[str, Any]) -> Listing | None:
    post_id, title, permalink = post.get("id"), post.get("title"), post.get("permalink")
    if not isinstance(post_id, str) or not isinstance(title, str) or not isinstance(permalink, str):
        return None
    title = " ".join(title.split())
    if not post_id or not title or not permalink.startswith("/") or _is_over(post):
        return None
    subreddit = str(post.get("subreddit") or "")
    found = find_price(title, SUBREDDIT_CURRENCIES.get(subreddit.lower(), DEFAULT_CURRENCY))
    author = post.get("author")
    return Listing(
        marketplace=MARKETPLACE,
        external_id=post_id,
        title=title,
        # The discussion, not the posted link: comments are where a deal is confirmed or called dead, and the
        # posted URL is whatever the poster chose.
        url=SITE + permalink,
        price=found[0] if found else None,
        price_text=found[1] if found else None,
        location=f"r/{subreddit}" if subreddit else None,
        image_url=_image(post),
        posted_at=_posted(post.get("created_utc")),
        seller=author[:200] if isinstance(author, str) and author != "[deleted]" else None,
    )


def _is_over(post: dict[str, Any]) -> bool:
    """Whether the post's flair or flair class says the deal is over, or its title starts with such a tag alone."""
    flairs = (post.get("link_flair_text"), post.get("link_flair_css_class"))
    if any(isinstance(flair, str) and _OVER.search(flair.replace("_", " ")) for flair in flairs):
        return True
    title = post.get("title")
    if isinstance(title, str) and title.lstrip().startswith(("[", "(")):
        # The whole tag must be the word: "[Expired]" is over, "[Dead Space Remake] - $20" is a game.
        tag = title.lstrip()[1:].split("]", 1)[0].split(")", 1)[0]
        return _OVER.fullmatch(tag.strip()) is not None
    return False


def _image(post: dict[str, Any]) -> str | None:
    try:
        source = post["preview"]["images"][0]["source"]["url"]
    except (KeyError, IndexError, TypeError):
        source = None
    if isinstance(source, str) and source.startswith("https://"):
        return source.replace("&amp;", "&")  # preview URLs are HTML-escaped unless the request asked for raw_json
    thumbnail = post.get("thumbnail")
    if isinstance(thumbnail, str) and thumbnail not in _NO_THUMBNAIL and thumbnail.startswith("https://"):
        return thumbnail
    return None


def _posted(created: Any) -> datetime | None:
    if isinstance(created, bool) or not isinstance(created, int | float):
        return None
    try:
        return datetime.fromtimestamp(created, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None
