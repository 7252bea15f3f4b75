"""The Reddit adapter: the new-posts JSON listing of the subreddits a search names, and the verdict on the answer."""

from __future__ import annotations

import re

from scout.errors import ConfigError, InputError
from scout.marketplace_names import MARKETPLACE_NAMES
from scrapers.base import Adapter, Capabilities, Page, Request, ScrapeResult, SearchQuery
from scrapers.netguard import SiteGuard
from scrapers.reddit.parse import SITE, parse_listing

# Reddit's rule for subreddit names: 3-21 letters, digits or underscores (a few old ones have 2); "a+b" reads several
# at once, and Reddit caps such a list near 100 names, far above what one search should poll.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_]{1,20}")
MAX_SUBREDDITS = 10
# The most posts one listing request returns (Reddit API docs, "listings": limit, maximum 100).
PAGE_SIZE = 100


def parse_subreddits(text: str) -> str:
    """ "r/buildapcsales", "buildapcsales+GameDeals" or "buildapcsales, gamedeals" -> "buildapcsales+gamedeals"."""
    names = [part.strip().removeprefix("/").removeprefix("r/") for part in re.split(r"[+,\s]+", text.strip())]
    names = [name for name in names if name]
    if not names or len(names) > MAX_SUBREDDITS or not all(_NAME.fullmatch(name) for name in names):
        raise ValueError(
            f"{text[:60]!r} is not a subreddit name (3-21 letters, digits or _, e.g. buildapcsales) or a list of "
            f"at most {MAX_SUBREDDITS} joined by '+'"
        )
    return "+".join(dict.fromkeys(name.lower() for name in names))


class RedditAdapter(Adapter):
    """Reads the newest posts of deal subreddits (r/buildapcsales, r/GameDeals...) from Reddit's JSON listing.

    The search's location names the subreddits ("buildapcsales" or "buildapcsales+gamedeals"; default: the
    REDDIT_SUBREDDITS setting) and its query words pick the posts (the scan's matcher does that), because a
    subreddit's new posts are the same whatever one looks for. Price comes from the title ("RTX 3080 - $499");
    posts flaired Expired, Sold out and the like are left out.
    """

    key = "reddit"
    name = MARKETPLACE_NAMES[key]
    # Reddit's Data API terms allow 100 queries a minute to OAuth clients and far fewer to clients without a
    # token, which it answers with 429s. 6 a minute across reddit.com stays well inside that. Deal subreddits
    # get up to a few dozen posts an hour, so the 100 newest every 5 minutes miss none.
    min_interval_minutes = 5
    requests_per_minute = 6.0
    rate_limit_domain = "reddit.com"
    registered_domains = (rate_limit_domain,)
    # location = the subreddits; every post has created_utc; a price only where the title gives one (deal
    # subreddits' rules ask for it), which a price range filters on; preview images on most link posts.
    capabilities = Capabilities(price_filter=True, location=True, posted_time=True, images=True)

    def __init__(self, default_subreddits: str = "buildapcsales+gamedeals") -> None:
        try:
            self.default_subreddits = parse_subreddits(default_subreddits)
        except ValueError as err:
            raise ConfigError(f"REDDIT_SUBREDDITS: {err}") from None

    def subreddits_for(self, query: SearchQuery) -> str:
        if not query.location:
            return self.default_subreddits
        try:
            return parse_subreddits(query.location)
        except ValueError as err:
            raise InputError(f"Reddit location {err}.", field="location") from None

    def build_request(self, query: SearchQuery) -> Request:
        # raw_json=1: fields come unescaped (otherwise "&" in preview URLs arrives as "&amp;").
        url = f"{SITE}/r/{self.subreddits_for(query)}/new.json?limit={PAGE_SIZE}&raw_json=1"
        return Request(url=url, headers=(("Accept", "application/json"),), url_guard=SiteGuard(self.registered_domains))

    def parse(self, page: Page) -> ScrapeResult:
        return parse_listing(page.body)
