"""Pasted marketplace search addresses: what each shape yields, what is refused and why, and that the adapter given
the result asks its site the same thing."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from scout.errors import InputError
from scrapers.base import Adapter, Request, SearchQuery
from scrapers.craigslist.adapter import CraigslistAdapter
from scrapers.ebay.adapter import EbayAdapter
from scrapers.facebook.adapter import FacebookAdapter
from scrapers.kijiji.adapter import KijijiAdapter
from scrapers.kleinanzeigen.adapter import KleinanzeigenAdapter
from scrapers.search_urls import MAX_URL_LENGTH, PastedSearch, read_search_url
from scrapers.vinted.adapter import VintedAdapter

D = Decimal


def expect(marketplace: str, query: str, **fields: Any) -> PastedSearch:
    return PastedSearch(marketplace, query, **fields)


# -- what each marketplace's addresses yield ---------------------------------------------------------------------

EBAY = [
    ("https://www.ebay.com/sch/i.html?_nkw=lego+star+wars&_sacat=0",
     expect("ebay", "lego star wars", currency="USD")),
    (("https://www.ebay.co.uk/sch/i.html?_from=R40&_trksid=p2334524.m570.l1313&_nkw=nintendo+switch+oled&_sacat=0"
     "&_udlo=120&_udhi=250.50&_ex_kw=broken+faulty&LH_BIN=1&LH_ItemCondition=3000&_stpos=SW1A1AA&_sadis=25"
     "&_sop=10&rt=nc&utm_source=newsletter&utm_medium=email"),
     expect("ebay", "nintendo switch oled", min_price=D("120"), max_price=D("250.50"), currency="GBP",
            exclude=("broken", "faulty"),
            ignored=("buy it now only", "condition", "distance from a postcode"))),
    ("HTTPS://WWW.EBAY.DE/sch/i.html?_nkw=gartenm%C3%B6bel%20set%20-kissen&_sacat=11700&LH_Sold=1&LH_Complete=1",
     expect("ebay", "gartenmöbel set", currency="EUR", exclude=("kissen",),
            ignored=("category", "sold items only", "completed listings only"))),
    ("https://www.ebay.com.au/sch/Video-Games/139973/i.html?_nkw=zelda&Platform=Nintendo%2520Switch&_dcat=139973",
     expect("ebay", "zelda", currency="AUD", ignored=("category", "item specifics (Platform)"))),
    ("https://m.ebay.ca/sch/i.html?_nkw=rtx+3080+(ti,super)+-(mining,parts)&LH_Auction=1",
     expect("ebay", "rtx 3080", currency="CAD", exclude=("mining", "parts"),
            ignored=("auctions only", "either-or words"))),
    ("https://www.ebay.com/sch/m.html?_ssn=bestseller99&_nkw=camera&_in_kw=3",
     expect("ebay", '"camera"', currency="USD", ignored=("seller",))),
    ("www.ebay.fr/sch/i.html?_nkw=velo%20route&LH_PrefLoc=1/",
     expect("ebay", "velo route", currency="EUR", ignored=("item location",))),
    ("<https://www.ebay.com/sch/i.html?_nkw=  vintage   camera  >",
     expect("ebay", "vintage camera", currency="USD")),
    (("https://www.ebay.com/sch/i.html?_nkw=%22game+boy+color%22+-%22for+parts%22+c%2B%2B&_udlo=10,50"
     "&mkcid=1&mkrid=711-53200-19255-0&campid=5338&toolid=10001&mkevt=1&_trkparms=ispr%3D1&hash=item1"),
     expect("ebay", '"game boy color" c++', min_price=D("10.50"), currency="USD", exclude=("for", "parts"))),
]

CRAIGSLIST = [
    ("https://sfbay.craigslist.org/search/sss?query=surfboard&min_price=100&max_price=500&sort=date",
     expect("craigslist", "surfboard", min_price=D("100"), max_price=D("500"), location="sfbay")),
    (("https://SFBay.Craigslist.org/search/sfc/bia?query=trek+bike&min_price=&max_price=800&search_distance=5"
     "&postal=94103&hasPic=1#search=1~gallery~0~0"),
     expect("craigslist", "trek bike", max_price=D("800"), location="sfbay",
            ignored=("category", "area within the site", "distance from a place", "with pictures only"))),
    ("https://corvallis.craigslist.org/search/sss#search=1~list~0~0&query=macbook%20-broken&max_price=900",
     expect("craigslist", "macbook", max_price=D("900"), location="corvallis", exclude=("broken",))),
    ("https://newyork.craigslist.org/search/sso/?query=couch|sofa%20leather",
     expect("craigslist", "leather", location="newyork", ignored=("sold by owner only", "either-or words"))),
    ("https://seattle.craigslist.org/d/for-sale/search/sss?query=kayak&postedToday=1&bundleDuplicates=1",
     expect("craigslist", "kayak", location="seattle", ignored=("posted today",))),
    ("https://www.craigslist.org/search/sss?query=piano",
     expect("craigslist", "piano")),
]

FACEBOOK = [
    (("https://www.facebook.com/marketplace/nyc/search/?query=kitchenaid%20mixer&minPrice=50&maxPrice=200&radius=40"
     "&exact=false&sortBy=creation_time_descend"),
     expect("facebook", "kitchenaid mixer", min_price=D("50"), max_price=D("200"), location="nyc", radius_km=40)),
    (("https://m.facebook.com/marketplace/108424279189115/search?query=road+bike&daysSinceListed=1"
     "&itemCondition=new%2Cused_like_new&deliveryMethod=local_pick_up&fbclid=IwAR0abc"),
     expect("facebook", "road bike", location="108424279189115",
            ignored=("listed within days", "condition", "delivery method"))),
    ("https://web.facebook.com/marketplace/search/?query=ps5&latitude=40.7128&longitude=-74.006&radius=20",
     expect("facebook", "ps5", location="40.7128,-74.006", radius_km=20)),
    ("https://www.facebook.com/marketplace/search?query=desk&radius=10",
     expect("facebook", "desk", ignored=("distance",))),
    ("https://www.facebook.com/marketplace/SanFrancisco/vehicles?query=civic&minYear=2010",
     expect("facebook", "civic", location="sanfrancisco", ignored=("category", "vehicle details"))),
    ("https://www.facebook.com/marketplace/category/search/?query=lamp",
     expect("facebook", "lamp")),
]

VINTED = [
    ("https://www.vinted.fr/catalog?search_text=robe%20zara&price_from=5&price_to=20&currency=EUR&order=newest_first",
     expect("vinted", "robe zara", min_price=D("5"), max_price=D("20"), currency="EUR")),
    (("https://www.vinted.pl/catalog?search_text=nike+air+max&price_from=50.0&brand_ids[]=53&size_ids[]=776"
     "&status_ids[]=6&catalog[]=1242&time=1718000000&search_id=123&page=1"),
     expect("vinted", "nike air max", min_price=D("50.0"), currency="PLN",
            ignored=("category", "brand", "size", "condition"))),
    ("https://www.vinted.co.uk/catalog/2050-clothing?search_text=barbour%20jacket&color_ids%5B%5D=12",
     expect("vinted", "barbour jacket", currency="GBP", ignored=("category", "colour"))),
    ("https://vinted.de/catalog/?search_text=lego&price_to=30&currency=eur",
     expect("vinted", "lego", max_price=D("30"), currency="EUR")),
]

KLEINANZEIGEN = [
    ("https://www.kleinanzeigen.de/s-fahrrad/k0", expect("kleinanzeigen", "fahrrad", currency="EUR")),
    ("https://www.kleinanzeigen.de/s-gartenm%C3%B6bel/k0", expect("kleinanzeigen", "gartenmöbel", currency="EUR")),
    ("https://www.kleinanzeigen.de/s-berlin/preis:100:500/e-bike/k0l3331r10",
     expect("kleinanzeigen", "e bike", min_price=D("100"), max_price=D("500"), currency="EUR", location="berlin",
            radius_km=10)),
    ("https://www.kleinanzeigen.de/s-preis::250/lego-technik/k0",
     expect("kleinanzeigen", "lego technik", max_price=D("250"), currency="EUR")),
    ("https://www.kleinanzeigen.de/s-muenchen/sofa/k0l6411r20", expect(
        "kleinanzeigen", "sofa", currency="EUR", location="l6411", radius_km=20)),
    (("https://www.ebay-kleinanzeigen.de/s-motorraeder-roller/bredeney/anbieter:privat/sortierung:preis/bmw-r80/"
     "k0c305l16858r50+motorraeder_roller.type_s:motorrad"),
     expect("kleinanzeigen", "bmw r80", currency="EUR", location="l16858", radius_km=50,
            ignored=("seller type", "category", "category details"))),
    ("https://m.kleinanzeigen.de/s-seite:2/kommode/k0/", expect("kleinanzeigen", "kommode", currency="EUR")),
    (("https://www.kleinanzeigen.de/s-suchanfrage.html?keywords=waschmaschine&categoryId=&locationId=3331&radius=5"
     "&sortingField=SORTING_DATE&minPrice=50&maxPrice=&action=find"),
     expect("kleinanzeigen", "waschmaschine", min_price=D("50"), currency="EUR", location="berlin", radius_km=5)),
    ("https://www.kleinanzeigen.de/s-anzeige:angebote/preis:5:/fahrrad/k0",
     expect("kleinanzeigen", "fahrrad", min_price=D("5"), currency="EUR", ignored=("ad type",))),
    ("https://www.kleinanzeigen.de/s-sofa/k0r20", expect("kleinanzeigen", "sofa", currency="EUR",
                                                         ignored=("distance",))),
]

KIJIJI = [
    (("https://www.kijiji.ca/b-buy-sell/city-of-toronto/nintendo-switch/k0c10l1700273?price=100__300&radius=20.0"
     "&address=Toronto%2C+ON&ll=43.65%2C-79.38&view=list&sort=dateDesc"),
     expect("kijiji", "nintendo switch", min_price=D("100"), max_price=D("300"), currency="CAD",
            location="city-of-toronto/l1700273", ignored=("category", "distance"))),
    ("https://www.kijiji.ca/b-achat-et-vente/quebec/nintendo/k0c10l9001",
     expect("kijiji", "nintendo", currency="CAD", location="quebec", ignored=("category",))),
    ("https://www.kijiji.ca/b-canada/iphone-13/k0l0?price=__600&dc=true",
     expect("kijiji", "iphone 13", max_price=D("600"), currency="CAD")),
    ("https://WWW.KIJIJI.CA/b-ottawa/road-bike/k0l1700185/?price=250__",
     expect("kijiji", "road bike", min_price=D("250"), currency="CAD", location="ottawa/l1700185")),
    ("https://www.kijiji.ca/rss-srp-jeux-video-vintage/quebec/gamecube/k0c623l9001",
     expect("kijiji", "gamecube", currency="CAD", location="quebec", ignored=("category",))),
]

TABLE = EBAY + CRAIGSLIST + FACEBOOK + VINTED + KLEINANZEIGEN + KIJIJI


@pytest.mark.parametrize(("url", "wanted"), TABLE, ids=[f"{w.marketplace}-{i}" for i, (_, w) in enumerate(TABLE)])
def test_search_address_yields(url: str, wanted: PastedSearch) -> None:
    assert read_search_url(url) == wanted


# -- what is refused, and what the user is told ------------------------------------------------------------------

BAD = [
    ("", "Paste the address of a search results page"),
    ("   ", "Paste the address of a search results page"),
    ("lego star wars", "not a web address"),
    ("https://www.ebay.com/sch/i.html?_nkw=x\n&_udlo=1", "line breaks"),
    ("https://www.ebay.com/sch/i.html?_nkw=" + "a" * MAX_URL_LENGTH, "at most 2,000"),
    ("ftp://www.ebay.com/sch/i.html?_nkw=lego", "Only web addresses (http or https)"),
    ("javascript:alert(1)", "not a web address"),
    ("https:///sch/i.html?_nkw=lego", "names no site"),
    ("https://www.amazon.com/s?k=lego", "www.amazon.com is not a marketplace"),
    ("https://www.ebay.com.evil.example/sch/i.html?_nkw=lego", "is not a marketplace"),
    ("https://www.ebay.com@evil.example/sch/i.html?_nkw=lego", "evil.example is not a marketplace"),
    ("https://www.gumtree.com/search?q=bike", "eBay, Craigslist, Facebook Marketplace, Vinted, Kleinanzeigen or Kijiji"),
    ("https://www.ebay.com/itm/394817363847?hash=item5bec", "one listing, not a search"),
    ("https://www.ebay.co.uk/itm/Lego-Star-Wars/264901451112", "one listing, not a search"),
    ("https://www.ebay.com/p/19035781958", "one listing, not a search"),
    ("https://sfbay.craigslist.org/sfc/bik/d/san-francisco-trek-domane/7888520643.html", "one listing, not a search"),
    ("https://www.facebook.com/marketplace/item/1234567890/", "one listing, not a search"),
    ("https://www.vinted.fr/items/4567890123-robe-zara", "one listing, not a search"),
    ("https://www.kleinanzeigen.de/s-anzeige/bmw-r80gs/3068244876-305-3453", "one listing, not a search"),
    ("https://www.kijiji.ca/v-buy-sell/city-of-toronto/switch/1700000001", "one listing, not a search"),
    ("https://www.ebay.com/sch/i.html?_sacat=139973", "That eBay search has no words to search for"),
    ("https://www.ebay.com/sch/i.html?_nkw=+++&_sacat=0", "has no words"),
    ("https://www.ebay.com/sch/i.html?_nkw=-broken", "has no words"),
    ("https://www.ebay.com/sch/i.html?_nkw=(ps4,ps5)", "other than either-or words"),
    ("https://www.ebay.com/", "not a search results page"),
    ("https://sfbay.craigslist.org/search/sss?min_price=10", "That Craigslist search has no words"),
    ("https://sfbay.craigslist.org/", "not a search results page"),
    ("https://www.facebook.com/marketplace/nyc/", "has no words"),
    ("https://www.facebook.com/groups/12345/", "not a search results page"),
    ("https://www.vinted.fr/catalog?brand_ids[]=53", "That Vinted search has no words"),
    ("https://www.vinted.fr/member/123-alice", "not a search results page"),
    ("https://www.kleinanzeigen.de/s-berlin/l3331", "That Kleinanzeigen search has no words"),
    ("https://www.kleinanzeigen.de/s-fahrraeder/c217", "has no words"),
    ("https://www.kleinanzeigen.de/s-bestandsliste.html?userId=37736795", "not a search results page"),
    ("https://www.kijiji.ca/b-buy-sell/city-of-toronto/c10l1700273", "That Kijiji search has no words"),
    ("https://www.kijiji.ca/", "not a search results page"),
    ("https://www.ebay.com/sch/i.html?_nkw=lego&_udlo=cheap", "minimum price in the address ('cheap') is not a number"),
    ("https://www.ebay.com/sch/i.html?_nkw=lego&_udhi=1e9", "maximum price in the address ('1e9') is not a number"),
    ("https://www.ebay.com/sch/i.html?_nkw=lego&_udlo=1,000", "('1,000') is not a number"),
    ("https://www.ebay.com/sch/i.html?_nkw=lego&_udlo=-5", "minimum price in the address (-5) is negative"),
    ("https://sfbay.craigslist.org/search/sss?query=bike&max_price=%2D20", "maximum price in the address (-20)"),
    ("https://www.ebay.com/sch/i.html?_nkw=lego&_udlo=500&_udhi=100", "minimum price in the address (500) is above"),
    ("https://www.kleinanzeigen.de/s-preis:900:100/sofa/k0", "minimum price in the address (900) is above"),
    ("https://www.kijiji.ca/b-canada/ps5/k0l0?price=abc__100", "('abc') is not a number"),
    ("https://www.vinted.fr/catalog?search_text=lego&price_from=NaN", "('NaN') is not a number"),
]


@pytest.mark.parametrize(("url", "said"), BAD)
def test_bad_address_is_refused_with_a_clear_message(url: str, said: str) -> None:
    with pytest.raises(InputError) as caught:
        read_search_url(url)
    assert said in str(caught.value)
    assert caught.value.field == "url"


def test_non_text_is_refused() -> None:
    with pytest.raises(InputError, match="Paste the address"):
        read_search_url(None)  # type: ignore[arg-type]


def test_address_at_the_length_cap_is_read() -> None:
    url = "https://www.ebay.com/sch/i.html?_nkw=lego&_trksid="
    url += "x" * (MAX_URL_LENGTH - len(url))
    assert read_search_url(url).query == "lego"


def test_escapes_that_are_not_utf8_are_read_as_windows_1252() -> None:
    """Older German addresses escape umlauts as single Latin-1 bytes (%F6 for ö)."""
    assert read_search_url("https://www.kleinanzeigen.de/s-gartenm%F6bel/k0").query == "gartenmöbel"


def test_repeated_parameter_keeps_the_first_value_and_the_query_string_wins_over_the_fragment() -> None:
    found = read_search_url("https://sfbay.craigslist.org/search/sss?query=bike&query=car#query=boat")
    assert found.query == "bike"


# -- the adapter given the result asks the same thing ------------------------------------------------------------


def request_for(adapter: Adapter, found: PastedSearch) -> Request:
    # As the saved search's scan does: the location only where the adapter can search by place.
    where = found.location if adapter.capabilities.location else None
    return adapter.build_request(SearchQuery.build(found.query, where, found.radius_km if where else None))


def test_round_trip_ebay() -> None:
    found = read_search_url("https://www.ebay.co.uk/sch/i.html?_nkw=nintendo+switch+oled&_udlo=120&_udhi=250")
    request = request_for(EbayAdapter(domain="www.ebay.co.uk"), found)
    asked = parse_qs(urlsplit(request.url).query)
    assert asked["_nkw"] == ["nintendo switch oled"]
    assert (found.min_price, found.max_price, found.currency) == (D("120"), D("250"), "GBP")


def test_round_trip_craigslist() -> None:
    found = read_search_url("https://corvallis.craigslist.org/search/sss?query=macbook%20pro&max_price=900")
    request = request_for(CraigslistAdapter(), found)
    parts = urlsplit(request.url)
    assert parts.hostname == "corvallis.craigslist.org"
    assert parse_qs(parts.query)["query"] == ["macbook pro"]
    assert found.max_price == D("900")


def test_round_trip_facebook_place_and_radius() -> None:
    found = read_search_url("https://www.facebook.com/marketplace/nyc/search/?query=kitchenaid%20mixer"
                            "&minPrice=50&maxPrice=200&radius=40")
    parts = urlsplit(request_for(FacebookAdapter(), found).url)
    assert parts.path == "/marketplace/nyc/search/"
    asked = parse_qs(parts.query)
    assert asked["query"] == ["kitchenaid mixer"]
    assert asked["radius"] == ["40"]
    assert (found.min_price, found.max_price) == (D("50"), D("200"))


def test_round_trip_facebook_coordinates() -> None:
    found = read_search_url("https://www.facebook.com/marketplace/search/?query=ps5&latitude=40.71&longitude=-74.0"
                            "&radius=20")
    asked = parse_qs(urlsplit(request_for(FacebookAdapter(), found).url).query)
    assert (asked["latitude"], asked["longitude"], asked["radius"]) == (["40.71"], ["-74.0"], ["20"])


def test_round_trip_vinted() -> None:
    found = read_search_url("https://www.vinted.pl/catalog?search_text=nike+air+max&price_from=50&price_to=200")
    request = request_for(VintedAdapter(domain="www.vinted.pl"), found)
    assert dict(request.params)["search_text"] == "nike air max"
    assert (found.min_price, found.max_price, found.currency) == (D("50"), D("200"), "PLN")


@pytest.mark.parametrize(("url", "path"), [
    ("https://www.kleinanzeigen.de/s-berlin/preis:100:500/e-bike/k0l3331r10", "/s-e-bike/k0l3331r10"),
    ("https://www.kleinanzeigen.de/s-muenchen/sofa/k0l6411r20", "/s-sofa/k0l6411r20"),
    ("https://www.kleinanzeigen.de/s-gartenm%C3%B6bel/k0", "/s-gartenmöbel/k0"),
])
def test_round_trip_kleinanzeigen(url: str, path: str) -> None:
    request = request_for(KleinanzeigenAdapter(), read_search_url(url))
    assert unquote(urlsplit(request.url).path) == path


@pytest.mark.parametrize(("url", "path"), [
    ("https://www.kijiji.ca/b-buy-sell/city-of-toronto/nintendo-switch/k0c10l1700273?price=100__300",
     "/rss-srp-city-of-toronto/nintendo-switch/k0l1700273"),
    ("https://www.kijiji.ca/b-achat-et-vente/quebec/nintendo/k0c10l9001", "/rss-srp-quebec/nintendo/k0l9001"),
    ("https://www.kijiji.ca/b-canada/iphone-13/k0l0", "/rss-srp-canada/iphone-13/k0l0"),
])
def test_round_trip_kijiji(url: str, path: str) -> None:
    assert urlsplit(request_for(KijijiAdapter(), read_search_url(url)).url).path == path


@pytest.mark.parametrize(("url", "wanted"), TABLE, ids=[f"{w.marketplace}-{i}" for i, (_, w) in enumerate(TABLE)])
def test_every_table_result_is_accepted_by_its_adapter(url: str, wanted: PastedSearch) -> None:
    """No result of the table makes its adapter refuse the location or the words."""
    adapters: dict[str, Adapter] = {
        "ebay": EbayAdapter(), "craigslist": CraigslistAdapter(), "facebook": FacebookAdapter(),
        "vinted": VintedAdapter(), "kleinanzeigen": KleinanzeigenAdapter(), "kijiji": KijijiAdapter(),
    }
    found = read_search_url(url)
    request = request_for(adapters[found.marketplace], found)
    first_word = found.query.strip('"').split()[0]
    assert first_word.lower() in unquote(request.url + str(request.params)).replace("+", " ").lower()
