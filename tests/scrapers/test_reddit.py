"""Reddit: new posts of deal subreddits parsed (price from the title, expired deals out), subreddits, end to end."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from scout.errors import ConfigError, InputError, ParseError
from scout.models import Money
from scrapers.base import ScrapeStatus, SearchQuery
from scrapers.reddit.adapter import RedditAdapter
from scrapers.reddit.parse import parse_listing
from tests.conftest import fixture_path
from tests.fakes.marketplace import FakeMarketplace
from tests.scrapers.site_matrix import CASES, Case, MakeFetcher, Site, check, run_cli_parse

PAGES = Path(__file__).resolve().parent / "pages"
WHOA = b"""<!doctype html><html><head><title>Too Many Requests</title></head><body>
<h1>whoa there, pardner!</h1><p>your request has been blocked due to a network policy.</p></body></html>"""
EMPTY = b'{"kind": "Listing", "data": {"after": null, "before": null, "children": []}}'


def page(name: str) -> bytes:
    return (PAGES / name).read_bytes()


def listing_of(*posts: dict[str, object]) -> bytes:
    return json.dumps({"kind": "Listing", "data": {"children": [{"kind": "t3", "data": p} for p in posts]}}).encode()


def post(n: int, title: object, **fields: object) -> dict[str, object]:
    return {"id": f"p{n}", "title": title, "permalink": f"/r/deals/comments/p{n}/x/", "created_utc": 1700000000 + n,
            "subreddit": "deals", **fields}


# -- synthetic listings ------------------------------------------------------------------------------------------


def test_live_deals_become_listings_and_expired_ones_are_left_out() -> None:
    result = parse_listing(page("reddit_new.json"))

    assert result.status is ScrapeStatus.SUCCESS
    # 1c0002 is flaired Expired, 1c0003 tagged [EXPIRED] in its title, 1c0005 flaired Sold Out.
    assert [item.external_id for item in result.listings] == ["1c0001", "1c0004", "1c0006"]
    gpu, ssd, witcher = result.listings
    assert gpu.title == "[GPU] Zotac RTX 3080 Trinity - $699.99 ($799.99 - $100)"
    assert (gpu.price, gpu.price_text) == (Money(Decimal("699.99"), "USD"), "$699.99")
    assert gpu.url == "https://www.reddit.com/r/buildapcsales/comments/1c0001/gpu_zotac_rtx_3080_trinity_69999/"
    assert gpu.posted_at == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    assert gpu.image_url == "https://external-preview.redd.it/rtx.jpg?width=640&s=abc"
    assert (gpu.location, gpu.seller) == ("r/buildapcsales", "dealfinder")
    # r/bapcsalescanada's "$" is the Canadian dollar; a deleted author is nobody.
    assert ssd.price == Money(Decimal(179), "CAD")
    assert (ssd.seller, ssd.image_url) == (None, None)
    assert witcher.price == Money(Decimal("9.99"), "EUR")


@pytest.mark.parametrize(
    ("title", "price"),
    [
        ("[GPU] RTX 3080 - $499", Money(Decimal(499), "USD")),
        ("[Monitor] Dell S2721DGF 27\" 1440p 165Hz - $279.99 + $5 shipping", Money(Decimal("279.99"), "USD")),
        ("[Case] $20 off Fractal North, now $109", Money(Decimal(109), "USD")),
        ("[RAM] 32GB DDR5 6000 CL30 (2x16) -$40 instant rebate, $89", Money(Decimal(89), "USD")),
        ("[PSU] Corsair RM850x £89.99", Money(Decimal("89.99"), "GBP")),
        ("[Steam] Hades (75% off)", None),
        ("[CPU] Ryzen 5 7600", None),
    ],
)
def test_price_is_read_from_the_title(title: str, price: Money | None) -> None:
    [listing] = parse_listing(listing_of(post(1, title))).listings
    assert listing.price == price


@pytest.mark.parametrize(
    "fields",
    [{"link_flair_text": "Expired"}, {"link_flair_text": "Out of Stock"}, {"link_flair_css_class": "expired"},
     {"link_flair_text": "Deal Expired :("}, {"title": "[Sold Out] [GPU] RTX 4090 - $1599"}],
)
def test_over_deals_are_left_out(fields: dict[str, object]) -> None:
    fields = {"title": "[GPU] RTX 4090 - $1599", **fields}
    assert parse_listing(listing_of(post(1, **fields))).status is ScrapeStatus.EMPTY


def test_a_post_that_cannot_be_read_makes_the_fetch_partial() -> None:
    """Regression: a post without a permalink used to vanish, so a changed format showed only as fewer alerts.
    A deal that is over is left out on purpose and is no lost row; a post repeated is one row."""
    body = listing_of(post(1, "[GPU] RTX 4090 - $1599"), post(1, "[GPU] RTX 4090 - $1599"),
                      post(2, "[CPU] 7800X3D - $350", link_flair_text="Expired"),
                      {"id": "p3", "title": "[SSD] 2TB - $99"}, post(4, "[RAM] 32GB - $80"))

    result = parse_listing(body)

    assert result.status is ScrapeStatus.PARTIAL
    assert (result.rows, len(result.listings), result.rows_lost) == (3, 2, 1)
    assert [listing.external_id for listing in result.listings] == ["p1", "p4"]


@pytest.mark.parametrize(
    "preview",
    [{"images": "none"}, {"images": [{"source": ["x"]}]}, "gone"],
    ids=["images-not-a-list", "source-not-an-object", "preview-not-an-object"],
)
def test_a_preview_of_another_shape_falls_back_to_the_thumbnail(preview: object) -> None:
    thumbnail = "https://b.thumbs.redditmedia.com/x.jpg"
    body = listing_of(post(1, "[GPU] RTX 4090 - $1599", preview=preview, thumbnail=thumbnail), post(2, "[CPU] x"))

    result = parse_listing(body)

    assert [listing.image_url for listing in result.listings] == [thumbnail, None]
    assert parse_listing(json.loads(body)) == result


@pytest.mark.parametrize(
    ("title", "flair"),
    [("[Tools] Soldering iron - $25", "Soldering"), ("[Dead Space Remake] Steam key - $20", None)],
)
def test_over_words_inside_other_words_or_titles_do_not_count(title: str, flair: str | None) -> None:
    [listing] = parse_listing(listing_of(post(1, title, link_flair_text=flair))).listings
    assert listing.external_id == "p1"


@pytest.mark.parametrize(
    ("body", "status"),
    [(EMPTY, ScrapeStatus.EMPTY), (WHOA, ScrapeStatus.BLOCKED),
     (b'{"message": "Forbidden", "error": 403, "reason": "private"}', ScrapeStatus.BLOCKED)],
    ids=["no-posts", "whoa-page", "json-error"],
)
def test_verdicts(body: bytes, status: ScrapeStatus) -> None:
    assert parse_listing(body).status is status


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"kind": "Listing", "data": {"children": [{"kind": "t5", "data": {"display_name": "buildapc"}}]}}',
         "no such subreddit"),
        (b'{"kind": "t3", "data": {}}', "not a Listing"),
        (b'{"data": {"items": []}}', "format changed"),
        (listing_of({"title": "no id or permalink"}), "none had"),
        (b"\xff\xfe garbage \x00" * 40, "not JSON"),
        (b"", "empty"),
    ],
)
def test_anything_else_is_broken(body: bytes, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse_listing(body)


# -- subreddits ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("location", "url"),
    [
        (None, "https://www.reddit.com/r/buildapcsales+gamedeals/new.json?limit=100&raw_json=1"),
        ("r/BuildAPCSales", "https://www.reddit.com/r/buildapcsales/new.json?limit=100&raw_json=1"),
        ("/r/GameDeals+bapcsalesuk", "https://www.reddit.com/r/gamedeals+bapcsalesuk/new.json?limit=100&raw_json=1"),
        ("hardwareswap, GameDeals", "https://www.reddit.com/r/hardwareswap+gamedeals/new.json?limit=100&raw_json=1"),
    ],
)
def test_listing_urls(location: str | None, url: str) -> None:
    assert RedditAdapter().build_request(SearchQuery.build("rtx", location)).url == url


@pytest.mark.parametrize("location", ["../../api/v1/me", "x", "a" * 22, "deals?limit=1", "+".join(["abc"] * 11)])
def test_bad_subreddit_names_are_refused(location: str) -> None:
    with pytest.raises(InputError, match="subreddit") as caught:
        RedditAdapter().build_request(SearchQuery.build("rtx", location))
    assert caught.value.field == "location"


def test_a_bad_default_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="REDDIT_SUBREDDITS"):
        RedditAdapter(default_subreddits="not a/subreddit!")


# -- the real listing (format only, r/AskReddit; skipped without ../shared/fixtures) -------------------------------


@pytest.mark.fixtures
def test_real_listing() -> None:
    result = parse_listing(fixture_path("reddit/askreddit-new-limit100-2016-03-praw-cassette.json").read_bytes())

    assert result.status is ScrapeStatus.SUCCESS
    assert len(result.listings) == 100
    first = result.listings[0]
    assert first.external_id == "48fbm9"
    assert first.title.startswith("[Serious] Parents of Reddit")
    assert first.url.startswith("https://www.reddit.com/r/AskReddit/comments/48fbm9/serious_parents_of_reddit")
    assert first.posted_at == datetime.fromtimestamp(1456821458, tz=UTC)
    assert result.listings[-1].external_id == "48f6io"
    assert all(item.location == "r/AskReddit" for item in result.listings)


def test_dealscout_parse(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    code, listings, summary = run_cli_parse("reddit", PAGES / "reddit_new.json", capsys, monkeypatch, tmp_path)
    assert (code, summary, len(listings), listings[0]["id"]) == (0, "success: 3 listings", 3, "1c0001")
    junk = tmp_path / "junk.json"
    junk.write_bytes(b"\x00\xffnot json" * 20)
    code, listings, summary = run_cli_parse("reddit", junk, capsys, monkeypatch, tmp_path)
    assert (code, listings) == (1, []) and summary.startswith("broken: 0 listings")


# -- end to end through the fetcher ----------------------------------------------------------------------------

SITE = Site(
    name="reddit",
    build=RedditAdapter,
    host="www.reddit.com",
    path="/r/buildapcsales+gamedeals/new.json",
    query=SearchQuery.build("rtx"),
    page=page("reddit_new.json"),
    ids=("1c0001", "1c0004", "1c0006"),
    empty=EMPTY,
    challenge=WHOA,
    content_type="application/json; charset=UTF-8",
    cut_after=b'"children": [',
)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
async def test_end_to_end(case: Case, fake_market: FakeMarketplace, make_fetcher: MakeFetcher) -> None:
    await check(SITE, case, fake_market, make_fetcher)


async def test_the_listing_asks_for_100_raw_posts(fake_market: FakeMarketplace, make_fetcher: MakeFetcher) -> None:
    await check(SITE, CASES[0], fake_market, make_fetcher)
    [sent] = fake_market.requests_to(SITE.path)
    assert sent.query == {"limit": "100", "raw_json": "1"}
    assert sent.headers["Accept"] == "application/json"


async def test_an_unknown_subreddit_redirected_to_subreddit_search_is_broken(
    fake_market: FakeMarketplace, make_fetcher: MakeFetcher
) -> None:
    # What Reddit does for /r/<unknown>/new.json: a redirect to a search for subreddits.
    fake_market.route("/r/nosuchsubxyz/new.json", status=302,
                      headers={"Location": "https://www.reddit.com/subreddits/search.json?q=nosuchsubxyz"})
    fake_market.route("/subreddits/search.json", b'{"kind": "Listing", "data": {"children": [{"kind": "t5"}]}}',
                      content_type="application/json")
    fetcher = make_fetcher(resolve=fake_market.resolving("www.reddit.com"))

    result = await RedditAdapter().search(SearchQuery.build("rtx", "nosuchsubxyz"), fetcher)

    assert result.status is ScrapeStatus.BROKEN
    assert "no such subreddit" in result.detail
