"""Deal rules on real result pages (skipped without ../shared/fixtures): seller filters and ratings on eBay, words
to exclude found in Kleinanzeigen descriptions, and a deal score over a real page's own comparables."""

from __future__ import annotations

import statistics
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from scout.deals import Comparable, Verdict, comparable_words, pick_comparables, score, total_price
from scout.matching import build_matcher, fold
from scout.models import Listing, SearchSpec
from scrapers.ebay.parse import parse_search_page as parse_ebay
from scrapers.kleinanzeigen.parse import parse_search_page as parse_kleinanzeigen
from tests.conftest import fixture_path

pytestmark = pytest.mark.fixtures
POKEMON = "ebay/srp-2026-07-pokemon-scard.html"
KLEINANZEIGEN = "kleinanzeigen/vip-page-with-10-similar-aditem-cards-2025-05.html"  # ten ad cards


def pokemon_page() -> tuple[Listing, ...]:
    return parse_ebay(fixture_path(POKEMON).read_bytes(), domain="www.ebay.com").listings


def spec(query: str, marketplace: str = "ebay", **changes: object) -> SearchSpec:
    return replace(SearchSpec(query=query, marketplaces=(marketplace,), check_interval_minutes=10), **changes)


def test_an_excluded_seller_loses_exactly_their_listings_on_a_real_page() -> None:
    listings = pokemon_page()
    seller = listings[0].seller
    assert seller == "mic_196915"
    theirs = [listing for listing in listings if listing.seller == seller]
    everyone = build_matcher(spec("pokemon"))
    without = build_matcher(spec("pokemon", exclude_sellers=("MIC_196915",)))  # the filter ignores case
    kept = [listing for listing in listings if everyone.matches(listing)]
    assert [listing for listing in kept if without.matches(listing)] == [
        listing for listing in kept if listing not in theirs]


def test_a_minimum_rating_keeps_the_sellers_rated_at_least_that_on_a_real_page() -> None:
    listings = pokemon_page()
    rated = [listing for listing in listings if listing.seller_rating is not None]
    assert len(rated) == 60  # every card of this page shows its seller's rating
    matcher = build_matcher(spec("pokemon", min_seller_rating=Decimal("99")))
    kept = {listing.external_id for listing in listings if matcher.matches(listing)}
    assert "307063707616" not in kept  # the first card: mic_196915, 77.8% positive
    plain = build_matcher(spec("pokemon"))
    assert kept == {listing.external_id for listing in listings
                    if plain.matches(listing) and listing.seller_rating is not None
                    and listing.seller_rating >= Decimal("99")}


def test_words_to_exclude_are_found_in_kleinanzeigen_descriptions() -> None:
    listings = parse_kleinanzeigen(fixture_path(KLEINANZEIGEN).read_bytes(), now=datetime(2026, 4, 20, tzinfo=UTC)
                                   ).listings
    described = [listing for listing in listings if listing.description]
    assert len(described) >= len(listings) // 2  # the result page carries a snippet for most ads
    # A word that is in some description and in no title.
    target = next(listing for listing in described
                  if any(word not in fold(listing.title) for word in fold(listing.description or "").split()))
    word = next(word for word in fold(target.description or "").split()
                if word.isalpha() and len(word) > 4 and word not in fold(target.title))
    matcher = build_matcher(spec("bmw", "kleinanzeigen", exclude=(word,)))
    ruled_out = [listing for listing in listings if not matcher.matches(listing)
                 and build_matcher(spec("bmw", "kleinanzeigen")).matches(listing)]
    assert target in ruled_out
    assert all(word in fold(f"{listing.title} {listing.description or ''}") for listing in ruled_out)


def test_a_real_pages_cheapest_card_scores_against_its_neighbours_with_delivery_counted() -> None:
    listings = [listing for listing in pokemon_page() if listing.price is not None]
    words = comparable_words("pokemon")
    comparables = [Comparable(number, listing.title, total)
                   for number, listing in enumerate(listings) if (total := total_price(listing)) is not None]
    picked = pick_comparables(comparables, exclude=["lot"], required_words=words)
    assert 15 <= len(picked) < len(comparables)  # "lot" rules some out; the rest are plenty to judge by
    cheapest = min(picked, key=lambda c: c.total)
    first = listings[0]
    assert total_price(first) == first.price.amount + first.shipping.amount  # type: ignore[union-attr]
    others = [c.total for c in picked if c.listing_id != cheapest.listing_id]
    judged = score(cheapest.total, others)
    assert judged is not None and judged.verdict in (Verdict.GREAT, Verdict.GOOD) and not judged.low_confidence
    assert (judged.median, judged.count, judged.percentile) == (statistics.median(others), len(others), 0.0)


def test_words_to_exclude_are_found_in_a_real_kijiji_feeds_escaped_descriptions() -> None:
    from scrapers.kijiji.parse import parse_feed

    listings = parse_feed(fixture_path("kijiji/rss-srp-k0c10l9001-2023-07-15.rss").read_bytes()).listings
    assert listings and all(listing.description for listing in listings)
    # "Secteur Beauport" is in one ad's description, not in its title "Mariokart DS".
    matcher = build_matcher(spec("mariokart", "kijiji", exclude=("beauport",)))
    [mariokart] = [listing for listing in listings if listing.title == "Mariokart DS"]
    assert build_matcher(spec("mariokart", "kijiji")).matches(mariokart) and not matcher.matches(mariokart)
    # The feed escapes its descriptions ("&#8226;" for a bullet): the words between the escapes are read.
    wanted = next(listing for listing in listings if "&#8226;" in (listing.description or ""))
    assert not build_matcher(spec("nintendo", "kijiji", exclude=("stickers",))).matches(wanted)


def test_words_to_exclude_are_found_in_rss_item_descriptions_given_as_html() -> None:
    from scrapers.rss.parse import parse_feed

    feed = (b'<?xml version="1.0"?><rss version="2.0"><channel><title>deals</title>'
            b'<item><title>Steam Deck 512GB $350</title><link>https://deals.example/1</link>'
            b'<description>&lt;p&gt;Open box, &lt;b&gt;cracked&lt;/b&gt; screen &amp;amp; no charger&lt;/p&gt;'
            b'</description></item>'
            b'<item><title>Steam Deck 256GB $300</title><link>https://deals.example/2</link>'
            b'<description><![CDATA[<p>Like new, <i>boxed</i></p>]]></description></item>'
            b'</channel></rss>')
    listings = parse_feed(feed, feed_url="https://deals.example/feed").listings
    matcher = build_matcher(spec("steam deck", "rss", exclude=("cracked",)))
    assert [listing.url for listing in listings if matcher.matches(listing)] == ["https://deals.example/2"]
    # A word of the markup is not a word of the description.
    assert all(build_matcher(spec("steam deck", "rss", exclude=("boxed", "p"))).matches(listing) is (n == 0)
               for n, listing in enumerate(listings))
