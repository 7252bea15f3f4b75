"""Reddit posts' own text as the listing's description: the real answer (skipped without ../shared/fixtures) and
small answers of our own."""

from __future__ import annotations

import pytest

from scrapers.reddit.parse import DESCRIPTION_LIMIT, parse_listing, parse_selftext
from tests.conftest import fixture_path
from tests.scrapers.pages_extra import reddit_listing, reddit_post

REAL_ANSWER = "reddit/askreddit-new-limit100-2016-03-praw-cassette.json"


@pytest.mark.fixtures
def test_real_answer_descriptions_come_from_selftext() -> None:
    """Read off the answer: 99 of the 100 posts are link-less questions with an empty selftext; 48fax4's is "."."""
    listings = parse_listing(fixture_path(REAL_ANSWER).read_bytes()).listings

    assert len(listings) == 100
    first, last = listings[0], listings[-1]
    assert (first.external_id, first.description, first.seller) == ("48fbm9", None, "RedHeadQc")
    assert (last.external_id, last.description, last.seller) == ("48f6io", None, "purpleclouds")
    assert {item.external_id: item.description for item in listings if item.description} == {"48fax4": "."}
    assert all(item.shipping is None and item.seller_rating is None for item in listings)


def test_selftext_becomes_a_plain_description() -> None:
    text = ("**Price:** $499 at [Newegg](https://www.newegg.com/p/N82E1) &amp; free shipping\n\n&#x200B;\n\n"
            "# Specs\n> 12 GB\n- 3 fans\n* boost 1.9 GHz\n\n~~$599~~ _was_ `MSRP`")
    listing = parse_listing(reddit_listing(reddit_post(1, selftext=text))).listings[0]

    assert listing.description == ("Price: $499 at Newegg & free shipping Specs 12 GB 3 fans boost 1.9 GHz $599 was "
                                   "MSRP")
    assert listing.shipping is None  # a post's words are no delivery cost


@pytest.mark.parametrize("selftext", ["", "[removed]", "[deleted]", None, 42, "  \n\u200b "])
def test_link_posts_and_removed_texts_have_no_description(selftext: object) -> None:
    fields = {} if selftext is None else {"selftext": selftext}
    listing = parse_listing(reddit_listing(reddit_post(2, **fields))).listings[0]

    assert listing.description is None


def test_a_long_selftext_is_cut() -> None:
    listing = parse_listing(reddit_listing(reddit_post(3, selftext="deal " * 1000))).listings[0]

    assert listing.description is not None and len(listing.description) == DESCRIPTION_LIMIT
    assert listing.description.endswith("…")


def test_words_with_inner_underscores_and_stars_keep_them() -> None:
    assert parse_selftext("snake_case 2*3=6 and *bold*") == "snake_case 2*3=6 and bold"


def test_an_answer_asked_without_raw_json_is_unescaped() -> None:
    """Without raw_json Reddit escapes "&", "<" and ">" again, the Markdown's own entities too."""
    assert parse_selftext("Tom &amp; Jerry &lt;3 &amp;#x200B; end") == "Tom & Jerry <3 end"
