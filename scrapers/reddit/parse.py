"""Reddit listing JSON (a subreddit's new posts) -> Listings, price read from titles, expired deals left out; pure."""

from __future__ import annotations

import html
import logging
import re
from datetime import UTC, datetime
from typing import Any

import msgspec

from scout.errors import ParseError
from scout.models import Listing
from scrapers.base import Distinct, ScrapeResult
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
# Longest description kept: a deal post's text can run to Reddit's 40,000 characters, and one listing is stored
# and alerted many times; the first 2,000 carry the terms that matter.
DESCRIPTION_LIMIT = 2000
# selftext of a post a moderator or its author took down.
_GONE_TEXTS = frozenset({"[removed]", "[deleted]"})
# Markdown that is markup, not words: [words](address) and ![words](address), runs of emphasis marks (*, _, ~ and
# backticks) at a word's edge, and heading, quote and list marks that start a line.
_MD_LINK = re.compile(r"!?\[([^\]]*)\]\([^)\s]*(?:\s+\"[^\"]*\")?\)")
_MD_MARKS = re.compile(r"(?:(?<=\s)|^)[*_~`]+|[*_~`]+(?=[\s.,;:!?)]|$)")
_MD_LINE_MARKS = re.compile(r"^[ \t]*(?:#{1,6}|>+|[-*+](?=\s))[ \t]*", re.MULTILINE)
# Reddit's editor writes a zero-width space ("&#x200B;") on blank lines.
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"))
# What Reddit answers instead of JSON when it refuses a client: its HTML block pages.
_BLOCK_MARKERS = ("whoa there, pardner", "blocked by network security", "you've been blocked", "too many requests",
                  "our cdn was unable to reach", "captcha")


class _Source(msgspec.Struct):
    url: Any = None


class _PreviewImage(msgspec.Struct):
    source: _Source | None = None


class _Preview(msgspec.Struct):
    images: list[_PreviewImage] | None = None


class _Post(msgspec.Struct):
    """The fields of a post (kind t3) the parser reads, of the hundred Reddit sends."""

    id: Any = None
    title: Any = None
    permalink: Any = None
    subreddit: Any = None
    author: Any = None
    selftext: Any = None
    created_utc: Any = None
    link_flair_text: Any = None
    link_flair_css_class: Any = None
    thumbnail: Any = None
    preview: _Preview | None = None


class _Child(msgspec.Struct):
    kind: Any = None
    data: _Post | None = None  # None: not a post the parser can read


class _Data(msgspec.Struct):
    children: list[_Child] | None | msgspec.UnsetType = msgspec.UNSET


class _Answer(msgspec.Struct):
    kind: Any = msgspec.UNSET
    data: _Data | None | msgspec.UnsetType = msgspec.UNSET
    error: Any = msgspec.UNSET
    reason: Any = None


# Typed decoding builds only the fields above and skips the rest of each post without building it: a third of
# the cost of json.loads. An answer of another shape is decoded as it is and read by _loose_answer.
_DECODER = msgspec.json.Decoder(_Answer)


def parse_listing(body: bytes | str | dict[str, Any]) -> ScrapeResult:
    """Classify and parse a listing answer (/r/<sub>/new.json): the posts that are still live deals.

    Every post counts as a result row, except deals that are over and posts repeating an earlier id, so a post
    that cannot be read makes the fetch partial.
    """
    answer = _loose_answer(body) if isinstance(body, dict) else _decode(body)
    if isinstance(answer, ScrapeResult):
        return answer
    if answer.error is not msgspec.UNSET and answer.data is msgspec.UNSET:
        # {"message": "Forbidden", "error": 403, "reason": "private"} and the like, sent with a 200 by some proxies.
        return ScrapeResult.blocked(f"Reddit refused: {answer.error} {answer.reason or ''}".strip())
    if answer.kind is msgspec.UNSET or not isinstance(answer.data, _Data) or answer.data.children is msgspec.UNSET:
        if answer.kind is not msgspec.UNSET and answer.kind != "Listing":
            raise ParseError(f"Reddit answer is a {answer.kind!r}, not a Listing")
        raise ParseError("Reddit answer has no data.children: the format changed")
    if answer.kind != "Listing":
        raise ParseError(f"Reddit answer is a {answer.kind!r}, not a Listing")
    children = answer.data.children
    if not isinstance(children, list):
        raise ParseError("Reddit data.children is not a list")
    posts = [child.data for child in children if child.kind == "t3"]
    if children and not posts:
        if all(child.kind == "t5" for child in children):
            # Reddit redirects a subreddit that does not exist to a search for subreddits with similar names.
            raise ParseError("no such subreddit: Reddit answered with a list of subreddits")
        raise ParseError(f"{len(children)} Reddit children but no posts (t3) among them")
    found = Distinct()
    undecoded = over = 0  # over: expired deals, left out on purpose
    for post in posts:
        listing = _post_listing(post) if post is not None else None
        if listing is not None:
            found.add(listing)
        elif post is not None and _is_over(post):
            over += 1
        else:
            undecoded += 1
    if posts and undecoded == len(posts):
        raise ParseError(f"{len(posts)} Reddit posts but none had an id, a title and a permalink")
    return ScrapeResult.of(found.listings, rows=len(posts) - over - found.repeats)


def _decode(body: bytes | str) -> _Answer | ScrapeResult:
    """The answer's parts the parser reads, or the verdict on a body that is not JSON (blocked or broken)."""
    raw = body.encode() if isinstance(body, str) else body
    if not raw or raw.isspace():
        raise ParseError("empty Reddit answer")
    try:
        return _DECODER.decode(raw)
    except msgspec.ValidationError:
        return _loose_answer(msgspec.json.decode(raw))
    except msgspec.DecodeError as err:
        head = raw[:65536].decode("utf-8", errors="replace").casefold()
        for marker in _BLOCK_MARKERS:
            if marker in head:
                return ScrapeResult.blocked(f"Reddit answered a block page ({marker!r}) instead of JSON")
        raise ParseError(f"Reddit answer is not JSON: {err}") from err


def _loose_answer(payload: Any) -> _Answer:
    """An answer of any shape as an _Answer: parts of the wrong kind become None, unreadable posts None."""
    if not isinstance(payload, dict):
        return _Answer()
    data = payload.get("data", msgspec.UNSET)
    if isinstance(data, dict):
        children = data.get("children", msgspec.UNSET)
        data = _Data([_loose_child(child) for child in children] if isinstance(children, list) else
                     None if children is not msgspec.UNSET else msgspec.UNSET)
    elif data is not msgspec.UNSET:
        data = None
    return _Answer(payload.get("kind", msgspec.UNSET), data, payload.get("error", msgspec.UNSET),
                   payload.get("reason"))


def _loose_child(child: Any) -> _Child:
    if not isinstance(child, dict):
        return _Child()
    post = child.get("data")
    if not isinstance(post, dict):
        return _Child(child.get("kind"))
    try:
        return _Child(child.get("kind"), msgspec.convert(post, _Post))
    except msgspec.ValidationError:  # a preview of another shape: the thumbnail is still there
        return _Child(child.get("kind"), msgspec.convert({**post, "preview": None}, _Post))


def _post_listing(post: _Post) -> Listing | None:
    post_id, title, permalink = post.id, post.title, post.permalink
    if not isinstance(post_id, str) or not isinstance(title, str) or not isinstance(permalink, str):
        return None
    title = " ".join(title.split())
    if not post_id or not title or not permalink.startswith("/") or _is_over(post):
        return None
    subreddit = str(post.subreddit or "")
    found = find_price(title, SUBREDDIT_CURRENCIES.get(subreddit.lower(), DEFAULT_CURRENCY))
    author = post.author
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
        posted_at=_posted(post.created_utc),
        seller=author[:200] if isinstance(author, str) and author != "[deleted]" else None,
        description=parse_selftext(post.selftext),
    )


def parse_selftext(text: Any) -> str | None:
    """A post's own text as plain words: Markdown links keep their words, emphasis, heading and quote marks and
    HTML entities go, whitespace collapses, and past DESCRIPTION_LIMIT it is cut. None for a link post (empty
    text) and for a removed or deleted one."""
    if not isinstance(text, str) or not text or text in _GONE_TEXTS:
        return None
    plain = html.unescape(text)
    if "&amp;" in text:  # an answer asked without raw_json escapes the Markdown's own entities ("&amp;#x200B;")
        plain = html.unescape(plain)
    plain = _MD_LINK.sub(r"\1", plain)
    plain = _MD_MARKS.sub("", _MD_LINE_MARKS.sub("", plain))
    plain = " ".join(plain.translate(_INVISIBLE).split())
    if len(plain) > DESCRIPTION_LIMIT:
        plain = plain[: DESCRIPTION_LIMIT - 1].rstrip() + "…"
    return plain or None


def _is_over(post: _Post) -> bool:
    """Whether the post's flair or flair class says the deal is over, or its title starts with such a tag alone."""
    for flair in (post.link_flair_text, post.link_flair_css_class):
        if isinstance(flair, str) and flair and _OVER.search(flair.replace("_", " ")):
            return True
    title = post.title
    if isinstance(title, str) and title.lstrip().startswith(("[", "(")):
        # The whole tag must be the word: "[Expired]" is over, "[Dead Space Remake] - $20" is a game.
        tag = title.lstrip()[1:].split("]", 1)[0].split(")", 1)[0]
        return _OVER.fullmatch(tag.strip()) is not None
    return False


def _image(post: _Post) -> str | None:
    images = post.preview.images if post.preview is not None else None
    source = images[0].source if images else None
    url = source.url if source is not None else None
    if isinstance(url, str) and url.startswith("https://"):
        return url.replace("&amp;", "&")  # preview URLs are HTML-escaped unless the request asked for raw_json
    thumbnail = post.thumbnail
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
