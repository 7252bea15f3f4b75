"""RSS 2.0, RSS 1.0 (RDF) and Atom feeds -> Listings, read with an XXE-safe XML parser; pure."""

from __future__ import annotations

import enum
import functools
import hashlib
import html
import logging
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin

from lxml import etree

from scout.errors import ParseError
from scout.models import Listing
from scrapers.base import Distinct, ScrapeResult
from scrapers.pricetext import find_price

log = logging.getLogger(__name__)

MARKETPLACE = "rss"
ATOM = "http://www.w3.org/2005/Atom"
RSS1 = "http://purl.org/rss/1.0/"
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
MEDIA = "http://search.yahoo.com/mrss/"
DC = "http://purl.org/dc/elements/1.1/"
_DC_DATE, _DC_CREATOR, _RDF_ABOUT = f"{{{DC}}}date", f"{{{DC}}}creator", f"{{{RDF}}}about"
_ATOM_ENTRY, _RSS1_ITEM = f"{{{ATOM}}}entry", f"{{{RSS1}}}item"
# A description longer than this is cut: its first words say what the item is about.
MAX_DESCRIPTION = 4000
# The element names an RSS item's fields have in RSS 2.0 (no namespace) and in RSS 1.0: title, link, description,
# pubDate, guid, enclosure. dc:date and dc:creator are the same in both.
_RSS_ITEM_FIELDS = ("title", "link", "description", "pubDate", "guid", "enclosure")
_RSS_TAGS = {ns: tuple(f"{{{ns}}}{name}" if ns else name for name in _RSS_ITEM_FIELDS) for ns in ("", RSS1)}
# listings.external_id is VARCHAR(128); longer or feed-local ids are hashed to fit and to stay unique across feeds.
MAX_EXTERNAL_ID = 128
_WEB = ("http://", "https://")
# The first <img src> of an item's HTML description: many deal feeds (Slickdeals among them) put the picture there.
_IMG_SRC = re.compile(r"""<img\b[^>]*?\bsrc\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
_TAG = re.compile(r"<[^>]+>")
_RFC822 = re.compile(
    r"(?:[A-Za-z]{3},\s*)?(\d{1,2})\s+([A-Za-z]{3})\s+(\d{4})\s+(\d{1,2}):(\d{2})(?::(\d{2}))?\s*(GMT|UTC?|Z|[+-]\d{4})?"
)
_MONTHS = {name: number for number, name in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1)}
# "Sat, 15 Jul 2023 02:29:12 GMT": RFC 9110's fixed-width date, and each month's digits in it.
_IMF_FIXDATE_LENGTH = 29
_IMF_DAY_LENGTH = 17
_MONTH_DIGITS = {name.capitalize(): f"{number:02d}" for name, number in _MONTHS.items()}
# What a CDN or bot wall answers instead of a feed; matched in the first bytes of a body that is not a feed.
# Each thread's XML parsers, by whether they keep blank text (see _xml_parser).
_PARSERS = threading.local()
BLOCK_MARKERS = ("captcha", "access denied", "just a moment...", "attention required", "are you a robot",
                 "unusual traffic", "request unsuccessful", "you have been blocked")


def parse_xml(body: bytes, *, what: str, blank_text: bool = True) -> etree._Element:
    """The document element of an XML body, parsed without entity expansion, DTDs or network (no XXE, no bombs).

    blank_text=False drops whitespace-only text between elements, for documents whose fields are all leaf
    elements (a Kijiji feed): less to build. Mixed content (an Atom XHTML title) needs it kept.
    """
    if not body or body.isspace():
        raise ParseError(f"empty {what} body")
    try:
        root = etree.fromstring(body, parser=_xml_parser(blank_text))
    except (etree.XMLSyntaxError, ValueError) as err:
        raise ParseError(f"{what} is not well-formed XML: {err}") from err
    if root is None:
        raise ParseError(f"{what} holds no XML element")
    return root


def _xml_parser(blank_text: bool) -> etree.XMLParser:
    """This thread's parser: lxml parsers are not safe to share between threads (big pages parse in a worker),
    and a new one costs a tenth of a small feed's parse."""
    name = "keeps_blank_text" if blank_text else "drops_blank_text"
    parser = getattr(_PARSERS, name, None)
    if parser is None:
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                                 huge_tree=False, recover=False, remove_pis=True, remove_blank_text=not blank_text,
                                 collect_ids=False)
        setattr(_PARSERS, name, parser)
    return parser


def local_name(element: etree._Element) -> str:
    tag = element.tag
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def block_reason(body: bytes, site: str) -> str | None:
    """Why a body that is not a feed looks like a block page, or None."""
    head = body[:65536].decode("utf-8", errors="replace").casefold()
    for marker in BLOCK_MARKERS:
        if marker in head:
            return f"{site} answered a block page ({marker!r}) instead of the feed"
    return None


def text_of(element: etree._Element | None) -> str | None:
    """The element's text with whitespace collapsed; None when absent or blank."""
    if element is None:
        return None
    raw = element.text if len(element) == 0 else "".join(element.itertext())
    return (" ".join(raw.split()) or None) if raw else None


def parse_date(text: str | None) -> datetime | None:
    """An RFC 822 (RSS pubDate) or ISO 8601 (Atom, dc:date) time as an aware datetime; naive ones are taken as UTC."""
    if not text:
        return None
    if len(text) == _IMF_FIXDATE_LENGTH:
        when = _imf_fixdate(text)
        if when is not None:
            return when
    text = text.strip()
    when = _iso_date(text) if text[:4].isdigit() else _rfc822_date(text)
    if when is None:
        # The e-mail parser reads every obsolete RFC 822 variant, at ten times the cost of the shapes above.
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            log.debug("unreadable feed date %r", text)
            return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _iso_date(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _imf_fixdate(text: str) -> datetime | None:
    """RFC 9110's fixed-width "Sat, 15 Jul 2023 02:29:12 GMT", which Kijiji and most feeds write, read by position
    at a third of the regular expression's cost; None for any other shape."""
    day = _imf_day(text[:_IMF_DAY_LENGTH])
    if day is None or not text.endswith(" GMT") or not text[19] == text[22] == ":":
        return None
    try:
        return datetime.fromisoformat(f"{day}T{text[_IMF_DAY_LENGTH:-4]}+00:00")
    except ValueError:
        return None


@functools.lru_cache(maxsize=256)
def _imf_day(text: str) -> str | None:
    """"Sat, 15 Jul 2023 " as "2023-07-15" (a feed's items share a few days); None when it is not that shape."""
    month = _MONTH_DIGITS.get(text[8:11])
    if month is None or text[3] != "," or not text[4] == text[7] == text[11] == text[16] == " ":
        return None
    day, year = text[5:7], text[12:16]
    return f"{year}-{month}-{day}" if day.isdigit() and year.isdigit() else None


def _rfc822_date(text: str) -> datetime | None:
    """The shape nearly every feed writes: "Sat, 15 Jul 2023 02:29:12 GMT" (or "+0200"); None for any other."""
    found = _RFC822.fullmatch(text)
    month = _MONTHS.get(found.group(2).lower()) if found else None
    if found is None or month is None:
        return None
    day, _, year, hour, minute, second, zone = found.groups()
    try:
        return datetime(int(year), month, int(day), int(hour), int(minute), int(second or 0), tzinfo=_zone(zone))
    except ValueError:
        return None


@functools.lru_cache(maxsize=64)
def _zone(text: str | None) -> tzinfo:
    if text is None or text[0] not in "+-":
        return UTC  # GMT, UT, UTC, Z, or none: RFC 822 times without a zone are read as UTC
    offset = timedelta(hours=int(text[1:3]), minutes=int(text[3:5]))
    return timezone(-offset if text[0] == "-" else offset)


def parse_feed(body: bytes, *, feed_url: str = "") -> ScrapeResult:
    """Classify and parse any RSS or Atom deal feed: its items become listings, their price read from the title.

    Every item counts as a result row (an item repeating an earlier id, once; an item whose only links are not
    web addresses, none), so an item without a title or a link makes the fetch partial.
    """
    try:
        items = list(feed_items(parse_xml(body, what="feed")))
    except ParseError:
        # Not a feed: a bot wall's page (well-formed or not) is blocked, anything else is broken.
        blocked = block_reason(body, "the feed's site")
        if blocked:
            return ScrapeResult.blocked(blocked)
        raise
    found = Distinct()
    unsafe = 0  # items whose only links are not web pages: left out on purpose, no lost rows
    for item in items:
        listing = _item_listing(item, feed_url)
        if listing is _UNSAFE_LINK:
            unsafe += 1
        elif listing is not None:
            found.add(listing)
    if items and not found.listings:
        raise ParseError(f"{len(items)} feed items but none had a link or id and a title")
    return ScrapeResult.of(found.listings, rows=len(items) - unsafe - found.repeats)


def feed_items(root: etree._Element) -> Iterator[etree._Element]:
    """The items (RSS) or entries (Atom) of a feed; ParseError when the document is not a feed at all."""
    # iterchildren matches names as find() and findall() do, without their path machinery.
    kind = local_name(root)
    if kind == "rss":
        channel = next(root.iterchildren("channel"), None)
        if channel is None:
            raise ParseError("RSS document without a <channel>")
        return channel.iterchildren("item")
    if root.tag == f"{{{RDF}}}RDF":
        if next(root.iterchildren(f"{{{RSS1}}}channel"), None) is None:
            raise ParseError("RSS 1.0 document without a <channel>")
        return root.iterchildren(f"{{{RSS1}}}item")
    if root.tag == f"{{{ATOM}}}feed":
        return root.iterchildren(f"{{{ATOM}}}entry")
    raise ParseError(f"not an RSS or Atom feed: the document element is <{kind or root.tag}>")


def _item_listing(item: etree._Element, feed_url: str) -> Listing | _Refused | None:
    """The item's listing; None when it has no title or no link; _UNSAFE_LINK when its links are refused."""
    tag = item.tag
    if tag == _ATOM_ENTRY:
        title, link, guid, posted, image, seller, description = _atom_fields(item)
    else:
        title, link, guid, posted, image, seller, description = _rss_fields(item, RSS1 if tag == _RSS1_ITEM else "")
    if not title or not (link or guid):
        return None
    # Absolute web addresses, nearly every link and picture, need no resolving.
    url = link if link and link.startswith(_WEB) else _absolute(link, feed_url) or _absolute(guid, feed_url)
    if not url:
        return _UNSAFE_LINK
    key = guid or url
    found = find_price(title)
    if image:
        image = image if image.startswith(_WEB) else _absolute(image, feed_url)
    return Listing(
        marketplace=MARKETPLACE,
        # An absolute URL is unique across feeds as it is; anything else ("1234", a tag: URI) only within its feed.
        external_id=key if len(key) <= MAX_EXTERNAL_ID and key.startswith(_WEB) else _hashed_id(key, feed_url),
        title=title,
        url=url,
        price=found[0] if found else None,
        price_text=found[1] if found else None,
        image_url=image or _description_image(description, feed_url),
        posted_at=posted,
        seller=seller[:200] if seller else None,
        description=description,
    )


class _Refused(enum.Enum):
    """An item left out on purpose: it is read, but is no listing to show."""

    UNSAFE_LINK = "its links are not web addresses (javascript:, data:)"


_UNSAFE_LINK = _Refused.UNSAFE_LINK
_Fields = tuple[str | None, str | None, str | None, datetime | None, str | None, str | None, str | None]


def _rss_fields(item: etree._Element, ns: str) -> _Fields:
    # One pass over the item's children, keeping the last of each name: an lxml find() per field costs more than
    # the rest of the parse. A feed's item is read in microseconds, so the common case of each field (a leaf
    # element) is read in place, and the names are compared one by one: a helper call or a table lookup per field
    # of every item is a tenth of the parse.
    t_title, t_link, t_description, t_pub_date, t_guid, t_enclosure = _RSS_TAGS[ns]
    title = link = guid = pub_date = dc_date = creator = description = image = None
    # A slice lists the children in one call, faster than stepping the element's own iterator.
    for child in item[:]:
        tag = child.tag
        if tag == t_title:
            title = child
        elif tag == t_link:
            link = child
        elif tag == t_description:
            description = child
        elif tag == t_pub_date:
            pub_date = child
        elif tag == t_guid:
            guid = child
        elif tag == t_enclosure:
            if image is None:
                kind = child.get("type")
                if not kind or kind.startswith("image/"):
                    image = child.get("url") or None
        elif tag == _DC_DATE:
            dc_date = child
        elif tag == _DC_CREATOR:
            creator = child
    title_text = link_text = guid_text = None
    if title is not None:
        raw = title.text if len(title) == 0 else "".join(title.itertext())
        # Titles are HTML-escaped text in practice, often escaped twice ("&amp;amp;"): unescaping plain text is
        # harmless.
        title_text = " ".join((html.unescape(raw) if "&" in raw else raw).split()) or None if raw else None
    if link is not None:
        raw = link.text if len(link) == 0 else "".join(link.itertext())
        link_text = " ".join(raw.split()) or None if raw else None
    if guid is not None:
        raw = guid.text if len(guid) == 0 else "".join(guid.itertext())
        guid_text = " ".join(raw.split()) or None if raw else None
    posted = None
    if pub_date is not None:
        raw = pub_date.text
        # Most feeds write RFC 9110's fixed-width date exactly: it is read as it stands.
        if raw is not None and len(raw) == _IMF_FIXDATE_LENGTH and len(pub_date) == 0:
            posted = _imf_fixdate(raw)
        if posted is None:
            posted = parse_date(text_of(pub_date))
    if posted is None and dc_date is not None:
        posted = parse_date(text_of(dc_date))
    return (
        title_text,
        link_text,
        guid_text or item.get(_RDF_ABOUT),
        posted,
        image or _media_image(item),
        text_of(creator) if creator is not None else None,
        _raw_text(description) if description is not None else None,
    )


def _raw_text(element: etree._Element | None) -> str | None:
    """An item's description as the feed has it, HTML and all, cut to MAX_DESCRIPTION: the picture is looked for in
    it, and words to exclude read it as plain text (scout.matching.plain_text), so the parse does no more."""
    if element is None:
        return None
    raw = element.text if len(element) == 0 else "".join(element.itertext())
    return raw[:MAX_DESCRIPTION] if raw and not raw.isspace() else None


def _atom_fields(entry: etree._Element) -> _Fields:
    def child(name: str) -> etree._Element | None:
        return entry.find(f"{{{ATOM}}}{name}")

    title_element = child("title")
    title = _clean_title(text_of(title_element))
    if title and title_element is not None and title_element.get("type") == "html":
        title = " ".join(_TAG.sub(" ", title).split()) or None
    link = image = None
    for element in entry.findall(f"{{{ATOM}}}link"):
        rel = element.get("rel", "alternate")
        if rel == "alternate" and link is None:
            link = element.get("href")
        elif rel == "enclosure" and image is None and (element.get("type") or "image/").startswith("image/"):
            image = element.get("href")
    posted = parse_date(text_of(child("published"))) or parse_date(text_of(child("updated")))
    author = entry.find(f"{{{ATOM}}}author/{{{ATOM}}}name")
    image = image or _media_image(entry)
    description = _raw_text(child("summary")) or _raw_text(child("content"))
    return title, link, text_of(child("id")), posted, image, text_of(author), description


def _media_image(item: etree._Element) -> str | None:
    # media:content of an image, else media:thumbnail; also inside a media:group, as Media RSS allows.
    for content in item.iter(f"{{{MEDIA}}}content"):
        kind, medium = content.get("type") or "", content.get("medium") or ""
        if content.get("url") and (medium == "image" or kind.startswith("image/") or (not kind and not medium)):
            return content.get("url")
    for thumbnail in item.iter(f"{{{MEDIA}}}thumbnail"):
        if thumbnail.get("url"):
            return thumbnail.get("url")
    return None


def _description_image(description: str | None, feed_url: str) -> str | None:
    if not description or "<img" not in description.lower():
        return None
    found = _IMG_SRC.search(description)
    return _absolute(html.unescape(found.group(1)), feed_url) if found else None


def _clean_title(title: str | None) -> str | None:
    if not title:
        return None
    return " ".join((html.unescape(title) if "&" in title else title).split()) or None


def _absolute(link: str | None, base: str) -> str | None:
    """An http(s) URL, relative ones resolved against the feed; anything else (javascript:, data:) is dropped."""
    if not link:
        return None
    link = link.strip()
    if link.startswith(("http://", "https://")):
        return link
    url = urljoin(base, link) if base.startswith(("http://", "https://")) else link
    return url if url.startswith(("http://", "https://")) else None


def _hashed_id(key: str, feed_url: str) -> str:
    """An id for a key unique only within its feed, or too long for the id column: hashed with the feed's address."""
    digest = hashlib.sha256(f"{feed_url}\n{key}".encode()).hexdigest()
    return f"sha256:{digest[:40]}"
