"""The CLI's deal features: deal options and pasted search addresses on `search add`, `search snooze`,
`destination`, and `history` (text and a PNG chart); bad input exits 2 and changes nothing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from dealscout import cli
from scout.config import load_settings
from scout.deals import comparable_words
from scout.models import FetchOutcome, Listing, Money

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in ("DATABASE_URL", "DISCORD_TOKEN", "TELEGRAM_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DEALSCOUT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_deal_options_are_saved_and_described(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "search", "add", "lego 42100", "-m", "ebay", "--min-deal", "good", "--price-drop",
                       "15%", "--exclude-sellers", "Bad Seller, junkshop", "--min-seller-rating", "98")
    assert code == 0
    assert ("good deals only; price drops of 15% or more; not from bad seller, junkshop; "
            "sellers rated 98% or better; active") in out
    code, out, _ = run(capsys, "search", "add", "bike", "-m", "ebay", "--price-drop", "off")
    assert code == 0 and "no price-drop alerts" in out


def test_a_pasted_search_address_becomes_the_search(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "search", "add",
                       "https://www.ebay.com/sch/i.html?_nkw=nintendo+switch&_udhi=200&LH_BIN=1&_trksid=p1")
    assert code == 0
    assert "saved #1 \u201cnintendo switch\u201d on eBay" in out and "price 0\u2013200 USD" in out
    assert "not kept from the address (a saved search cannot filter by them): buy it now only" in out


@pytest.mark.parametrize(("argv", "message"), [
    (["search", "add", "lego", "--min-deal", "superb"], "not one of: great, good, fair"),
    (["search", "add", "lego", "--min-seller-rating", "150"], "from 1% to 100%"),
    (["search", "add", "lego", "--price-drop=-5%"], "price drop worth telling"),
    (["search", "add", "https://www.amazon.com/s?k=lego"], "is not a marketplace"),
    (["search", "add", "https://www.ebay.com/itm/1234567890"], "one listing, not a search"),
    (["search", "snooze", "1", "99w"], "up to 30 days"),
    (["search", "snooze", "1", "soon"], "is not a duration"),
    (["destination", "console", "--quiet", "25:00-07:00"], "not a time of day"),
    (["destination", "console", "--quiet", "22-7", "--timezone", "Mars/Base"], "Unknown time zone"),
    (["history", "drop table"], "names no search or listing"),
])
def test_bad_deal_input_exits_2_and_changes_nothing(capsys: pytest.CaptureFixture[str], argv: list[str],
                                                    message: str) -> None:
    assert run(capsys, "search", "add", "lego", "-m", "ebay")[0] == 0
    code, _, err = run(capsys, *argv)
    assert code == 2 and message in err
    code, out, _ = run(capsys, "search", "list")
    assert out.count("saved") == 0 and out.count("#") == 1 and "snoozed" not in out
    assert "quiet hours none; layout full" in run(capsys, "destination", "console")[1]


def test_snooze_and_wake(capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "search", "add", "lego", "-m", "ebay")
    code, out, _ = run(capsys, "search", "snooze", "1", "2h")
    assert code == 0 and "active, snoozed until" in out
    code, out, _ = run(capsys, "search", "snooze", "1", "off")
    assert code == 0 and out.rstrip().endswith("; active")


def test_destination_quiet_hours_and_layout(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "destination", "console", "--quiet", "22:00-07:00", "--timezone", "Europe/Berlin",
                       "--layout", "compact")
    assert code == 0 and out.strip() == "console:main: quiet hours 22:00\u201307:00 Europe/Berlin; layout compact"
    code, out, _ = run(capsys, "destination", "console", "--quiet", "off", "--layout", "full")
    assert code == 0 and out.strip() == "console:main: quiet hours none; layout full"


def _seed_prices(query: str, prices: list[int], repriced: dict[str, int]) -> None:
    """Two saves of eBay listings carrying the query's words: every price, then some of them changed."""
    async def seed() -> None:
        async with cli.open_repository(load_settings()) as repo:
            words = comparable_words(query)
            start = datetime.now(UTC) - timedelta(days=2)
            for step, changes in enumerate(({}, repriced)):
                listings = tuple(
                    Listing("ebay", str(1000 + n), f"{query} set {n}", f"https://www.ebay.com/itm/{1000 + n}",
                            price=Money(Decimal(changes.get(str(1000 + n), price)), "USD"))
                    for n, price in enumerate(prices))
                fetch = FetchOutcome("ebay", query, "success", 5, listings, carrying={words: listings})
                await repo.save_scan(now=start + timedelta(days=step), fetches=[fetch], runs=[], searches={})

    asyncio.run(seed())


def test_history_of_a_search_and_of_a_listing(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    run(capsys, "search", "add", "lego castle", "-m", "ebay")
    _seed_prices("lego castle", [40, 55, 60, 62, 70, 75, 90, 120], {"1007": 99})
    code, out, _ = run(capsys, "history", "1", "--png", str(tmp_path / "search.png"))
    assert code == 0
    assert "#1 \u201clego castle\u201d: 8 comparable listings, last 90 days" in out
    assert "40.00\u201399.00 USD, median 66.00" in out  # the comparables at their current prices
    assert (tmp_path / "search.png").read_bytes().startswith(PNG_SIGNATURE)
    code, out, _ = run(capsys, "history", "ebay:1007", "--png", str(tmp_path / "listing.png"))
    assert code == 0
    assert "lego castle set 7" in out and "120.00 \u2192 99.00 USD (-18%)" in out
    assert (tmp_path / "listing.png").read_bytes().startswith(PNG_SIGNATURE)
    code, _, err = run(capsys, "history", "ebay:999")
    assert code == 2 and "None of your searches found ebay:999." in err


def test_the_deal_window_is_a_setting(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    run(capsys, "search", "add", "lego castle", "-m", "ebay")
    _seed_prices("lego castle", [40, 55, 60], {})  # seen two days ago, and one day ago
    monkeypatch.setenv("DEAL_WINDOW_DAYS", "1")
    code, _, err = run(capsys, "history", "1")
    assert code == 2 and "no priced listings in the last 1 days yet" in err
    monkeypatch.setenv("DEAL_WINDOW_DAYS", "7")
    code, out, _ = run(capsys, "history", "1")
    assert code == 0 and "3 comparable listings, last 7 days" in out
    monkeypatch.setenv("DEAL_WINDOW_DAYS", "0")
    code, _, err = run(capsys, "history", "1")
    assert code == 2 and "DEAL_WINDOW_DAYS" in err


def test_a_snooze_that_has_ended_is_not_shown(capsys: pytest.CaptureFixture[str]) -> None:
    from bot.describe import describe_state
    from scout.models import Destination, SavedSearch, SearchSpec, SearchStatus

    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    search = SavedSearch(1, "u", Destination("console", "main"), SearchSpec("lego", ("ebay",), 10),
                         SearchStatus.ACTIVE, now, now, snoozed_until=now + timedelta(hours=2))
    assert describe_state(search, now) == "active, snoozed until 2026-11-30 14:00 UTC"
    assert describe_state(search, now + timedelta(hours=3)) == "active"
