"""RSS/Atom feeds: items parsed safely (no XXE), the feed URL checked when saved and at every fetch and redirect hop."""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from bot.commands import build_spec
from scout.errors import InputError, ParseError
from scout.models import Money
from scrapers.base import ScrapeStatus, SearchQuery
from scrapers.netguard import UrlGuard
from scrapers.rss.adapter import RssAdapter
from scrapers.rss.parse import parse_feed
from tests.conftest import fixture_path
from tests.fakes.marketplace import FakeMarketplace
from tests.scrapers.site_matrix import CASES, Case, MakeFetcher, Site, check, run_cli_parse

PAGES = Path(__file__).resolve().parent / "pages"
FEED_HOST = "feeds.deals.example"
FEED_URL = f"https://{FEED_HOST}/rss"
PUBLIC = "93.184.215.14"
EMPTY = b'<?xml version="1.0"?><rss version="2.0"><channel><title>Deals</title></channel></rss>'
CLOUDFLARE = b"""<!DOCTYPE html><html><head><title>Just a moment...</title></head>
<body><div id="challenge-running">Checking if the site connection is secure</div></body></html>"""


def page(name: str) -> bytes:
    return (PAGES / name).read_bytes()


def hashed(feed_url: str, key: str) -> str:
    return "sha256:" + hashlib.sha256(f"{feed_url}\n{key}".encode()).hexdigest()[:40]


def fake_dns(table: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    async def resolve(host: str, port: int) -> Iterable[str]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return table[host]

    return resolve


def guarded(table: dict[str, list[str]] | None = None) -> RssAdapter:
    """The adapter with its real guard, resolving names from a table instead of DNS."""
    return RssAdapter(url_guard=UrlGuard(fake_dns(table if table is not None else {FEED_HOST: [PUBLIC]})))


# -- parsing -----------------------------------------------------------------------------------------------------


def test_rss_items_become_listings() -> None:
    result = parse_feed(page("rss_deals.xml"), feed_url=FEED_URL)

    assert result.status is ScrapeStatus.SUCCESS
    lego, rtx, control = result.listings  # the javascript: link is no listing
    # A guid that is no URL is unique only within its feed: hashed with the feed's address.
    assert lego.external_id == hashed(FEED_URL, "thread-1001")
    assert lego.title == "Lego Icons Botanical Set & Vase - $39.99 ($20 off)"
    assert (lego.price, lego.price_text) == (Money(Decimal("39.99"), "USD"), "$39.99")
    assert lego.posted_at == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    assert lego.image_url == "https://img.deals.example/1001.jpg?a=1&b=2"
    assert lego.seller == "dealhunter"
    assert rtx.external_id == "https://deals.example/f/1002-rtx-4070-super"
    assert rtx.url == f"https://{FEED_HOST}/f/1002-rtx-4070-super"  # relative links resolve against the feed
    assert rtx.image_url == "https://img.deals.example/1002.jpg"
    assert rtx.price is None
    assert (control.external_id, control.image_url, control.posted_at) == (
        "https://deals.example/f/1003-control", "https://img.deals.example/1003.jpg", None)


def test_atom_entries_become_listings() -> None:
    result = parse_feed(page("atom_deals.xml"), feed_url="https://deals.example/atom.xml")

    deck, kindle = result.listings
    assert deck.external_id == hashed("https://deals.example/atom.xml", "tag:deals.example,2023:entry-2001")
    assert deck.title == "Steam Deck OLED 512GB – £479"  # type="html": entities and tags undone
    assert deck.price == Money(Decimal(479), "GBP")
    assert deck.url == "https://deals.example/d/2001"
    assert deck.image_url == "https://img.deals.example/2001.png"
    assert deck.posted_at == datetime(2023, 11, 14, 22, 13, 20, tzinfo=timezone(timedelta(hours=1)))
    assert deck.seller == "Alice"
    assert kindle.external_id == "https://deals.example/d/2002"
    assert kindle.price == Money(Decimal("119.99"), "EUR")
    assert kindle.posted_at == datetime(2023, 11, 14, 10, 0, tzinfo=UTC)  # no offset given: UTC
    assert kindle.image_url == "https://img.deals.example/2002.jpg"


def test_rss_1_items_become_listings() -> None:
    body = b"""<?xml version="1.0"?>
    <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/"
             xmlns:dc="http://purl.org/dc/elements/1.1/">
      <channel rdf:about="https://d.example/"><title>Deals</title></channel>
      <item rdf:about="https://d.example/3001"><title>Switch OLED - $299</title><link>https://d.example/3001</link>
        <dc:date>2023-11-14T09:00:00Z</dc:date></item>
    </rdf:RDF>"""
    [item] = parse_feed(body, feed_url="https://d.example/index.rdf").listings
    assert (item.external_id, item.price, item.posted_at) == (
        "https://d.example/3001", Money(Decimal(299), "USD"), datetime(2023, 11, 14, 9, 0, tzinfo=UTC))


def test_an_item_that_cannot_be_read_makes_the_fetch_partial() -> None:
    """Regression: an item without a title used to vanish, so a changed feed showed only as fewer alerts. An item
    whose only link is refused (javascript:) is left out on purpose, and an item repeated is one row."""
    good = b"<item><title>Desk lamp $15</title><link>https://deals.example/f/1</link></item>"
    body = (b'<rss version="2.0"><channel><title>x</title>' + good + good
            + b"<item><link>https://deals.example/f/2</link><description>no title</description></item>"
            + b"<item><title>Script</title><link>javascript:alert(1)</link></item>"
            + good.replace(b"f/1", b"f/3") + b"</channel></rss>")

    result = parse_feed(body, feed_url=FEED_URL)

    assert result.status is ScrapeStatus.PARTIAL
    assert (result.rows, len(result.listings), result.rows_lost) == (3, 2, 1)
    assert [listing.url for listing in result.listings] == ["https://deals.example/f/1", "https://deals.example/f/3"]


def test_the_same_guid_in_two_feeds_is_two_listings() -> None:
    body = page("rss_deals.xml")
    one = parse_feed(body, feed_url="https://a.example/rss").listings[0]
    two = parse_feed(body, feed_url="https://b.example/rss").listings[0]
    assert one.external_id != two.external_id


def test_a_guid_too_long_for_the_id_column_is_hashed() -> None:
    guid = "https://deals.example/" + "x" * 200
    body = f'<rss version="2.0"><channel><item><title>t</title><guid>{guid}</guid></item></channel></rss>'.encode()
    [item] = parse_feed(body, feed_url=FEED_URL).listings
    assert item.external_id == hashed(FEED_URL, guid) and len(item.external_id) <= 128
    assert item.url == guid


def test_entities_are_never_expanded() -> None:
    """Pins XXE safety: external entities are not read, and an entity bomb is refused, not expanded."""
    xxe = b"""<?xml version="1.0"?>
    <!DOCTYPE rss [<!ENTITY file SYSTEM "file:///etc/hostname"><!ENTITY net SYSTEM "http://169.254.169.254/">]>
    <rss version="2.0"><channel><title>t</title>
      <item><title>Deal &file; &net;</title><link>https://d.example/1</link></item></channel></rss>"""
    [item] = parse_feed(xxe, feed_url=FEED_URL).listings
    assert item.title == "Deal &file; &net;"
    bomb = b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa">' + b"".join(
        b'<!ENTITY %s "%s">' % (bytes([98 + i]), (b"&%s;" % bytes([97 + i])) * 10) for i in range(8)
    ) + b']><rss version="2.0"><channel><item><title>&i;</title><link>https://d.example/1</link></item></channel></rss>'
    with pytest.raises(ParseError):
        parse_feed(bomb, feed_url=FEED_URL)


@pytest.mark.parametrize(
    ("body", "status"),
    [(EMPTY, ScrapeStatus.EMPTY), (b'<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title></feed>',
                                   ScrapeStatus.EMPTY), (CLOUDFLARE, ScrapeStatus.BLOCKED)],
    ids=["rss", "atom", "cloudflare"],
)
def test_verdicts(body: bytes, status: ScrapeStatus) -> None:
    assert parse_feed(body, feed_url=FEED_URL).status is status


@pytest.mark.parametrize(
    "body",
    [b"<html><body><p>Our new website</p></body></html>", b"<?xml version='1.0'?><rss version='2.0'/>",
     b'<rss version="2.0"><channel><item><title>no link</title></item></channel></rss>', b"\x00\xff" * 500, b""],
    ids=["html", "no-channel", "no-usable-item", "garbage", "empty"],
)
def test_anything_else_is_broken(body: bytes) -> None:
    with pytest.raises(ParseError):
        parse_feed(body, feed_url=FEED_URL)


@pytest.mark.fixtures
def test_a_real_rss_feed() -> None:
    result = parse_feed(fixture_path("kijiji/rss-srp-k0c10l9001-2023-07-15.rss").read_bytes(), feed_url=FEED_URL)
    assert len(result.listings) == 20
    assert result.listings[0].external_id.endswith("/1666166038")
    assert all(item.image_url and item.posted_at for item in result.listings)


# -- the feed URL when a search is saved -------------------------------------------------------------------------


def test_the_feed_url_is_the_location_and_is_required() -> None:
    adapter = guarded()
    request = adapter.build_request(SearchQuery("lego", FEED_URL))
    assert request.url == FEED_URL
    assert request.url_guard is not None
    with pytest.raises(InputError, match="feed's address as the search's location"):
        adapter.build_request(SearchQuery("lego"))


def test_the_adapter_keeps_the_case_of_the_feed_url() -> None:
    url = "https://feeds.feedburner.com/SlickdealsnetFP?format=Atom"
    assert guarded().build_request(SearchQuery("lego", url)).url == url


def test_a_feed_url_keeps_its_case_through_searchquery_build() -> None:
    """Regression: SearchQuery.build casefolded the location, and feed paths and queries are case-sensitive."""
    url = "https://feeds.feedburner.com/SlickdealsnetFP?format=Atom"
    assert guarded().build_request(SearchQuery.build("lego", url)).url == url
    spec = build_spec({"rss": guarded()}, query="lego", marketplaces="rss", location=url)
    assert guarded().build_request(SearchQuery.build(spec.query, spec.location)).url == url


def test_production_always_guards() -> None:
    assert isinstance(RssAdapter().build_request(SearchQuery("lego", FEED_URL)).url_guard, UrlGuard)


@pytest.mark.parametrize(
    ("location", "message"),
    [("http://169.254.169.254/latest/meta-data/", "link-local"), ("http://[::1]:8080/feed", "loopback"),
     ("file:///etc/passwd", "http:// or https://"), ("http://10.0.0.5/rss", "private"),
     ("http://localhost/rss", "internal host name")],
)
def test_build_spec_refuses_internal_feed_urls(location: str, message: str) -> None:
    with pytest.raises(InputError, match=message) as caught:
        build_spec({"rss": guarded()}, query="lego", marketplaces="rss", location=location)
    assert caught.value.field == "location"


def test_build_spec_accepts_a_public_feed_url() -> None:
    spec = build_spec({"rss": guarded()}, query="lego", marketplaces="rss", location=FEED_URL)
    assert spec.location == FEED_URL


def test_dealscout_parse(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    code, listings, summary = run_cli_parse("rss", PAGES / "rss_deals.xml", capsys, monkeypatch, tmp_path)
    assert (code, summary, len(listings)) == (0, "success: 3 listings", 3)
    assert listings[0]["price"] == "39.99" and listings[1]["id"] == "https://deals.example/f/1002-rtx-4070-super"
    code, listings, summary = run_cli_parse("rss", PAGES / "atom_deals.xml", capsys, monkeypatch, tmp_path)
    assert (code, summary, listings[1]["currency"]) == (0, "success: 2 listings", "EUR")


# -- end to end through the fetcher, guard on ------------------------------------------------------------------

SITE = Site(
    name="rss",
    build=guarded,
    host=FEED_HOST,
    path="/rss",
    query=SearchQuery("lego", FEED_URL),
    page=page("rss_deals.xml"),
    ids=(hashed(FEED_URL, "thread-1001"), "https://deals.example/f/1002-rtx-4070-super",
         "https://deals.example/f/1003-control"),
    empty=EMPTY,
    challenge=CLOUDFLARE,
    content_type="application/rss+xml; charset=utf-8",
    cut_after=b"<item>",
)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
async def test_end_to_end(case: Case, fake_market: FakeMarketplace, make_fetcher: MakeFetcher) -> None:
    await check(SITE, case, fake_market, make_fetcher)


async def test_a_name_resolving_to_loopback_is_blocked_before_anything_is_sent(
    fake_market: FakeMarketplace, make_fetcher: MakeFetcher
) -> None:
    fake_market.route("/rss", page("rss_deals.xml"))
    fetcher = make_fetcher(resolve=fake_market.resolving(FEED_HOST))

    result = await guarded({FEED_HOST: ["127.0.0.1"]}).search(SITE.query, fetcher)

    assert result.status is ScrapeStatus.BLOCKED
    assert "resolves to 127.0.0.1, a loopback address" in result.detail
    assert fake_market.requests == []  # not even robots.txt


@pytest.mark.parametrize("internal", ["literal", "name"])
async def test_a_redirect_into_an_internal_address_is_blocked(
    internal: str, fake_market: FakeMarketplace, make_fetcher: MakeFetcher
) -> None:
    # The fake itself is on 127.0.0.1: an unguarded redirect to it would reach /secret.
    target = f"{fake_market.url}/secret" if internal == "literal" else "http://metadata.deals.example/secret"
    fake_market.route("/rss", status=302, headers={"Location": target})
    fake_market.route("/secret", page("rss_deals.xml"))
    fetcher = make_fetcher(resolve=fake_market.resolving(FEED_HOST, "metadata.deals.example"))
    adapter = guarded({FEED_HOST: [PUBLIC], "metadata.deals.example": ["169.254.169.254"]})

    result = await adapter.search(SITE.query, fetcher)

    assert result.status is ScrapeStatus.BLOCKED
    assert ("loopback" if internal == "literal" else "link-local") in result.detail
    assert fake_market.requests_to("/rss") and not fake_market.requests_to("/secret")


async def test_without_the_guard_the_same_redirect_goes_through(
    fake_market: FakeMarketplace, make_fetcher: MakeFetcher
) -> None:
    """The control for the test above: it is the guard, not the fake, that stops the redirect."""
    fake_market.route("/rss", status=302, headers={"Location": "http://metadata.deals.example/secret"})
    fake_market.route("/secret", page("rss_deals.xml"))
    fetcher = make_fetcher(resolve=fake_market.resolving(FEED_HOST, "metadata.deals.example"))

    result = await RssAdapter(url_guard=None).search(SITE.query, fetcher)

    assert result.status is ScrapeStatus.SUCCESS
    assert fake_market.requests_to("/secret")


async def test_a_public_redirect_is_followed(fake_market: FakeMarketplace, make_fetcher: MakeFetcher) -> None:
    fake_market.route("/rss", status=301, headers={"Location": "https://cdn.deals.example/feed.xml"})
    fake_market.route("/feed.xml", page("rss_deals.xml"), content_type="application/rss+xml")
    fetcher = make_fetcher(resolve=fake_market.resolving(FEED_HOST, "cdn.deals.example"))
    adapter = guarded({FEED_HOST: [PUBLIC], "cdn.deals.example": ["2606:2800:21f:cb07:6820:80da:af6b:8b2c"]})

    result = await adapter.search(SITE.query, fetcher)

    assert result.status is ScrapeStatus.SUCCESS
    # Ids of feed-local guids follow the final address of the feed.
    assert result.listings[0].external_id == hashed("https://cdn.deals.example/feed.xml", "thread-1001")


def test_the_service_registers_every_new_adapter_and_builds_its_fetcher() -> None:
    """Regression: the composition root probes build_request for a rate-limit domain; the rss adapter needs none."""
    from dealscout.app import build_fetcher
    from scout.config import load_settings
    from scrapers.registry import build_adapters

    settings = load_settings({}, env_file=None)
    adapters = build_adapters(settings)
    assert {"kleinanzeigen", "kijiji", "reddit", "rss"} <= set(adapters)
    assert isinstance(adapters["rss"].build_request(SearchQuery("x", FEED_URL)).url_guard, UrlGuard)
    build_fetcher(settings, adapters)


def test_a_padded_or_loose_pub_date_reads_as_the_fixed_width_one() -> None:
    """The fixed-width date is read as it stands; any other spelling of it still goes through the full reader."""
    expected = datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    for written in ("Tue, 14 Nov 2023 22:13:20 GMT", "\n  Tue, 14 Nov 2023 22:13:20 GMT\n", "Tue,  14 Nov 2023 22:13:20 GMT",
                    "Tue, 14 Nov 2023 22:13:20 +0000"):
        body = (f'<rss version="2.0"><channel><item><title>t</title><link>https://d.example/1</link>'
                f"<pubDate>{written}</pubDate></item></channel></rss>").encode()
        assert parse_feed(body, feed_url=FEED_URL).listings[0].posted_at == expected, written
