"""robots.txt read as RFC 9309 says (wildcards, longest match, Allow on a tie) and the verdict an operator can ask for."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from scrapers.base import Request, ScrapeStatus, SearchQuery
from scrapers.ebay.adapter import EbayAdapter
from scrapers.http import HttpFetcher
from scrapers.http_rules import build_robots_rules
from scrapers.netguard import UrlGuard
from tests.fakes.marketplace import TEST_USER_AGENT, FakeMarketplace

MakeFetcher = Callable[..., HttpFetcher]
UA = "DealScout/0.1 (personal deal alerts; honours robots.txt)"

# Shaped like eBay's: everything under /sch/ is closed except the result pages sorted a given way.
EBAY_LIKE = """User-agent: *
Disallow: /sch/
Allow: /sch/i.html*_sop=12
Disallow: /itm/*?*_trksid=
Allow: /itm/
"""
# Rules whose order in the file is the opposite of their precedence, with a `$` anchor and a tie.
COMPETING = """User-agent: *
Disallow: /shop/
Allow: /shop/deals
Disallow: /*.json$
Allow: /api/public.json$
Disallow: /tie
Allow: /tie
"""
# A group for our product token and one for everyone else.
GROUPS = """User-agent: DealScout
Disallow: /search

User-agent: *
Disallow: /private
"""
# A group named after a word of our user agent's comment ("personal deal alerts"), which is not our name.
COMMENT_WORD = """User-agent: alerts
Disallow: /

User-agent: *
Disallow: /private
"""
ROBOTS = {"ebay-like": EBAY_LIKE, "competing": COMPETING, "groups": GROUPS, "comment-word": COMMENT_WORD}


@pytest.mark.parametrize(
    ("robots", "path", "allowed"),
    [
        ("ebay-like", "/sch/i.html?_nkw=lego&_sop=12", True),  # the longer wildcard Allow beats Disallow: /sch/
        ("ebay-like", "/sch/i.html?_nkw=lego&_sop=10", False),
        ("ebay-like", "/sch/ebayadvsearch", False),
        ("ebay-like", "/itm/1234", True),
        ("ebay-like", "/itm/1234?hash=1&_trksid=p2", False),  # `*` is a wildcard, not a literal star
        ("competing", "/shop/deals/today", True),  # longest match wins, whatever the order in the file
        ("competing", "/shop/cart", False),
        ("competing", "/feed.json", False),
        ("competing", "/feed.json?page=2", True),  # `$` anchors the rule at the end of the URL
        ("competing", "/api/public.json", True),
        ("competing", "/tie", True),  # equally long Allow and Disallow: Allow wins
        ("groups", "/search?q=lego", False),  # our own group applies...
        ("groups", "/private", True),  # ...instead of the one for everyone else
        ("comment-word", "/", True),  # groups are matched against our product token only
    ],
)
def test_rules_are_read_as_rfc_9309_says(robots: str, path: str, allowed: bool) -> None:
    """Pins the bug: urllib.robotparser took `*` literally and the first match in file order, so on an eBay-like
    robots.txt it refused the pages the site allows and allowed ones it refuses."""
    rules = build_robots_rules("https://shop.example/robots.txt", 200, ROBOTS[robots].encode())

    assert rules.can_fetch(UA, f"https://shop.example{path}") is allowed


async def test_an_ebay_search_allowed_by_a_wildcard_rule_is_fetched(
    fake_market: FakeMarketplace, make_fetcher: MakeFetcher
) -> None:
    """Pins the bug: eBay's searches ended BLOCKED "robots.txt disallows" where its robots.txt allows them."""
    fake_market.robots("User-agent: *\nDisallow: /sch/\nAllow: /sch/i.html*_sop=10\n")
    fake_market.route("/sch/i.html", "<html><h1 class='srp-controls__count-heading'>0 results</h1></html>")
    fetcher = make_fetcher(resolve=fake_market.resolving("www.ebay.com"))

    result = await EbayAdapter().search(SearchQuery.build("lego"), fetcher)

    assert result.status is not ScrapeStatus.BLOCKED, result.detail
    assert fake_market.requests_to("/sch/i.html")


# -- the verdict, as `dealscout doctor` asks for it ------------------------------------------------------------


async def test_the_verdict_names_the_robots_txt_and_the_path(
    fake_market: FakeMarketplace, make_fetcher: MakeFetcher
) -> None:
    fake_market.robots(EBAY_LIKE)
    fetcher = make_fetcher(resolve=fake_market.resolving("www.ebay.com"))
    request = EbayAdapter().build_request(SearchQuery.build("lego"))

    verdict = await fetcher.robots_verdict(request)

    assert not verdict.allowed
    assert verdict.reason == (
        "https://www.ebay.com/robots.txt disallows /sch/i.html?_nkw=lego&_sop=10 for DealScoutTest")
    allowed = await fetcher.robots_verdict(Request("https://www.ebay.com/sch/i.html", params=(("_sop", "12"),)))
    assert allowed.allowed and "allows /sch/i.html?_sop=12" in allowed.reason
    # One robots.txt read for both questions, and none of the pages asked about.
    assert fake_market.paths == ["/robots.txt"]
    assert fake_market.requests[0].user_agent == TEST_USER_AGENT


@pytest.mark.parametrize(
    ("status", "allowed", "words"),
    [(404, True, "answered HTTP 404: no rules"), (403, False, "answered HTTP 403: everything is treated as disallowed"),
     (503, True, "answered HTTP 503; allowing for now")],
)
async def test_the_verdict_says_when_robots_txt_had_no_rules(
    status: int, allowed: bool, words: str, fake_market: FakeMarketplace, make_fetcher: MakeFetcher
) -> None:
    fake_market.robots("whatever", status=status)

    verdict = await make_fetcher().robots_verdict(Request(f"{fake_market.url}/s"))

    assert (verdict.allowed, verdict.reason) == (allowed, f"{fake_market.url}/robots.txt {words}")


async def test_the_verdict_when_robots_txt_cannot_be_read(
    fake_market: FakeMarketplace, make_fetcher: MakeFetcher
) -> None:
    fake_market.truncate("/robots.txt", "User-agent: *\nDis")

    verdict = await make_fetcher().robots_verdict(Request(f"{fake_market.url}/s"))

    assert verdict.allowed and verdict.reason.endswith("robots.txt could not be read; allowing for now")


async def test_the_verdict_when_robots_txt_does_not_apply(
    fake_market: FakeMarketplace, make_fetcher: MakeFetcher
) -> None:
    fake_market.robots("User-agent: *\nDisallow: /\n")

    api = await make_fetcher().robots_verdict(Request(f"{fake_market.url}/api", robots=False))
    off = await make_fetcher(respect_robots=False).robots_verdict(Request(f"{fake_market.url}/s"))

    assert api.allowed and "official API" in api.reason
    assert off.allowed and "RESPECT_ROBOTS_TXT=false" in off.reason
    assert fake_market.requests == []


async def test_the_verdict_reports_a_guard_refusal(fake_market: FakeMarketplace, make_fetcher: MakeFetcher) -> None:
    async def internal(host: str, port: int) -> list[str]:
        return ["10.0.0.7"]

    fetcher = make_fetcher(resolve=fake_market.resolving("feeds.example"))
    verdict = await fetcher.robots_verdict(Request("https://feeds.example/rss", url_guard=UrlGuard(internal)))

    assert not verdict.allowed and "10.0.0.7, a private address" in verdict.reason
    assert fake_market.requests == []
