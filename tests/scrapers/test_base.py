"""The adapter contract's pure parts: how a search's text and location are normalised into the shared fetch key."""

from __future__ import annotations

import pytest

from scrapers.base import SearchQuery, normalise_location


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        (None, None),
        ("   ", None),
        (" SFBay ", "sfbay"),
        ("San Francisco", "san francisco"),
        ("40.7128,-74.0060", "40.7128,-74.0060"),
        ("HTTPS://Feeds.FeedBurner.com/SlickdealsnetFP", "https://feeds.feedburner.com/SlickdealsnetFP"),
        ("https://Deals.Example?Feed=Hot#Top", "https://deals.example?Feed=Hot#Top"),
        ("http://User:PassWord@Host.Example:8080/Rss", "http://User:PassWord@host.example:8080/Rss"),
    ],
)
def test_places_are_casefolded_and_urls_keep_their_path_and_query(location: str | None, expected: str | None) -> None:
    """Regression: SearchQuery.build casefolded a feed URL whole, so /SlickdealsnetFP became a 404."""
    assert normalise_location(location) == expected


def test_searches_that_differ_only_in_case_and_spacing_share_a_query() -> None:
    assert SearchQuery.build(" Lego  Castle ", "SFBay", 10) == SearchQuery.build("lego castle", "sfbay", 10)
