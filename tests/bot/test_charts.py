"""bot.charts: PNG price charts drawn headless, at once in several threads, from scraped titles and odd amounts."""

from __future__ import annotations

import asyncio
import struct
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.charts import (
    DPI,
    HEIGHT_INCHES,
    MISSING_GLYPH,
    WIDTH_INCHES,
    bin_count,
    build_price_distribution_figure,
    build_price_history_figure,
    clean_text,
    cut_to_width,
    format_tick,
    needs_private_config_dir,
    price_distribution_png,
    price_history_png,
    render,
)

ROOT = Path(__file__).resolve().parents[2]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SIZE = (int(WIDTH_INCHES * DPI), int(HEIGHT_INCHES * DPI))
# Discord's attachment limit, the smaller of the two platforms' (Telegram takes photos up to 10 MB); a chart is
# expected to be far below it, so the test asks for a small fraction.
DISCORD_FILE_LIMIT = 8 * 1024 * 1024
T0 = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def history(*amounts: str, every: timedelta = timedelta(days=2, hours=5)) -> list[tuple[datetime, Decimal]]:
    return [(T0 + every * n, Decimal(amount)) for n, amount in enumerate(amounts)]


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from the PNG header: the signature, then the IHDR chunk first."""
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def assert_small_png(data: bytes) -> None:
    assert png_size(data) == SIZE
    assert len(data) < DISCORD_FILE_LIMIT // 40


def texts(figure: Any) -> list[Any]:
    """Every text artist of a chart: the figure's (its title) and the axes' (the current price's label)."""
    return [*figure.texts, *(text for axes in figure.axes for text in axes.texts)]


# --- the charts ---------------------------------------------------------------------------------------------------


def test_a_price_history_is_an_800_by_450_png() -> None:
    data = price_history_png(history("120", "118", "110", "112", "95", "89"), title="LEGO 10497", currency="EUR")
    assert_small_png(data)


def test_a_price_history_marks_the_current_price_and_the_currency() -> None:
    figure = build_price_history_figure(history("89.5", "120"), title="LEGO", currency="EUR")
    axes = figure.axes[0]
    assert [text.get_text() for text in axes.texts] == ["now 120.00 EUR"]
    assert axes.get_ylabel() == "Price (EUR)"
    assert [text.get_text() for text in figure.texts] == ["LEGO"]


def test_price_history_points_may_come_in_any_order() -> None:
    points = history("100", "90", "80")
    figure = build_price_history_figure(list(reversed(points)), title="x", currency="EUR")
    assert [text.get_text() for text in figure.axes[0].texts] == ["now 80.00 EUR"]
    assert price_history_png(list(reversed(points)), title="x", currency="EUR") == price_history_png(
        points, title="x", currency="EUR")


def test_a_price_distribution_is_an_800_by_450_png_with_the_median_and_the_marker() -> None:
    prices = [Decimal(n) for n in (80, 95, 99, 100, 101, 104, 110, 150)]
    figure = build_price_distribution_figure(prices, title="LEGO", currency="EUR", marker=Decimal("72.5"))
    legend = [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
    assert legend == ["8 comparable listings", "median 100.50 EUR", "this listing 72.50 EUR"]
    data = price_distribution_png(prices, title="LEGO", currency="EUR", marker=Decimal("72.5"),
                                  median=Decimal(100))
    assert_small_png(data)


def test_a_given_median_is_drawn_as_given() -> None:
    figure = build_price_distribution_figure([Decimal(1), Decimal(9)], title="x", currency="EUR",
                                             median=Decimal("4.2"))
    assert [text.get_text() for text in figure.axes[0].get_legend().get_texts()] == [
        "2 comparable listings", "median 4.20 EUR"]


@pytest.mark.parametrize(
    ("build", "points", "message"),
    [
        (price_history_png, [], "needs at least one \\(time, price\\) point; got none"),
        (price_distribution_png, [], "needs at least one price; got none"),
        (price_history_png, [(T0, Decimal("NaN"))], "price NaN cannot be drawn"),
        (price_history_png, [(T0, Decimal("1E+400"))], "price 1E\\+400 cannot be drawn"),
        (price_distribution_png, [Decimal("-Infinity")], "price -Infinity cannot be drawn"),
        (price_history_png, [(T0, Decimal(1)), (datetime(2026, 3, 2), Decimal(2))], "not a mix"),
    ],
)
def test_undrawable_input_is_refused_with_a_clear_message(build: Callable[..., bytes], points: list[Any],
                                                          message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build(points, title="x", currency="EUR")


def test_a_marker_that_is_not_a_number_is_refused() -> None:
    with pytest.raises(ValueError, match="marker NaN cannot be drawn"):
        price_distribution_png([Decimal(1)], title="x", currency="EUR", marker=Decimal("NaN"))


@pytest.mark.filterwarnings("error")  # a glyph matplotlib cannot draw would warn; no chart here may
@pytest.mark.parametrize(
    ("name", "build"),
    [
        ("one point", lambda title: price_history_png(history("42"), title=title, currency="EUR")),
        ("one moment twice", lambda title: price_history_png(history("42", "40", every=timedelta(0)),
                                                             title=title, currency="EUR")),
        ("identical prices", lambda title: price_history_png(history(*["5"] * 30), title=title, currency="USD")),
        ("huge amounts", lambda title: price_history_png(history("123456789012345.67", "98765432109876.5"),
                                                         title=title, currency="IDR")),
        ("past a float's precision", lambda title: price_history_png(history("1E+300", "2E+300"), title=title,
                                                                     currency="XXX")),
        ("tiny amounts", lambda title: price_history_png(history("0.00012", "0.000089", "0.0001"), title=title,
                                                         currency="BTC")),
        ("zero and negative", lambda title: price_history_png(history("0", "-5", "3"), title=title,
                                                              currency="EUR")),
        ("years apart", lambda title: price_history_png(history("1", "2", every=timedelta(days=900)), title=title,
                                                        currency="EUR")),
        ("naive times", lambda title: price_history_png([(datetime(2026, 1, 1), Decimal(3)),
                                                         (datetime(2026, 1, 1, 0, 5), Decimal(2))],
                                                        title=title, currency="EUR")),
        ("one price", lambda title: price_distribution_png([Decimal("9.99")], title=title, currency="EUR")),
        ("identical prices", lambda title: price_distribution_png([Decimal(5)] * 12, title=title,
                                                                  currency="EUR", marker=Decimal(5))),
        ("one huge price", lambda title: price_distribution_png([Decimal("1E+20")] * 3, title=title,
                                                                currency="USD", marker=Decimal("2E+20"))),
        ("tiny prices", lambda title: price_distribution_png([Decimal("0.0001"), Decimal("0.0003")], title=title,
                                                             currency="BTC", marker=Decimal("0.0002"))),
        ("an outlier", lambda title: price_distribution_png([Decimal(10)] * 500 + [Decimal("10.01"),
                                                             Decimal(999999)], title=title, currency="EUR")),
        ("no currency", lambda title: price_distribution_png([Decimal(1), Decimal(2)], title=title, currency="")),
    ],
)
@pytest.mark.parametrize("title", ["Pokémon ポケモン Booster 🔥", "", "\u202eevil\u0000\ttitle\n" * 40])
def test_edge_cases_render(name: str, build: Callable[[str], bytes], title: str) -> None:
    assert_small_png(build(title))


def test_huge_amounts_are_counted_in_billions_on_the_axis() -> None:
    figure = build_price_history_figure(history("1200000000000", "1100000000000", "950000000000"), title="x",
                                        currency="IDR")
    figure.canvas.draw()
    labels = [label.get_text() for label in figure.axes[0].get_yticklabels() if label.get_text()]
    assert labels and all(label.endswith("T") for label in labels)
    assert "1.00T" in labels


def test_a_dollar_in_a_title_is_text_never_mathtext() -> None:
    """A scraped "$5 ... $" pair would start mathtext; this one is not even valid mathtext, so a parse would fail."""
    title = r"Was $5 \frac{1}{ now $3"
    with pytest.raises(ValueError):  # what would happen if the title reached mathtext
        _draw_as_math(title)
    figure = build_price_history_figure(history("5", "3"), title=title, currency="USD")
    assert [(text.get_text(), text.get_parse_math(), text.get_usetex()) for text in figure.texts] == [
        (title, False, False)]
    assert all(not text.get_parse_math() for text in texts(figure))
    assert_small_png(price_history_png(history("5", "3"), title=title, currency="USD"))
    assert_small_png(price_distribution_png([Decimal(5)], title=title, currency="$", marker=Decimal(3)))


def _draw_as_math(text: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure()
    FigureCanvasAgg(figure)
    figure.text(0, 0, text, parse_math=True)
    figure.canvas.draw()


def test_a_long_title_is_cut_to_the_width_of_the_image() -> None:
    figure = build_price_history_figure(history("1"), title="W" * 300, currency="EUR")
    [title] = figure.texts
    assert title.get_text().endswith("…")
    figure.canvas.draw()
    box = title.get_window_extent()
    assert 0 <= box.x0 and box.x1 <= SIZE[0]


# --- threads ------------------------------------------------------------------------------------------------------


async def test_render_runs_a_chart_in_a_worker_thread() -> None:
    threads: list[threading.Thread] = []

    def chart(points: list[tuple[datetime, Decimal]], *, title: str, currency: str) -> bytes:
        threads.append(threading.current_thread())
        return price_history_png(points, title=title, currency=currency)

    data = await render(chart, history("3", "2"), title="x", currency="EUR")
    assert_small_png(data)
    assert threads and threads[0] is not threading.main_thread()


async def test_renders_in_threads_at_the_same_time_match_renders_one_at_a_time() -> None:
    """Four threads start drawing together (a barrier, not a sleep) and each gets the bytes it would get alone."""
    jobs: list[tuple[Callable[..., bytes], tuple[Any, ...], dict[str, Any]]] = [
        (price_history_png, (history("120", "110", "99"),), {"title": "Pokémon ポケモン", "currency": "EUR"}),
        (price_distribution_png, ([Decimal(n) for n in range(10, 90, 3)],),
         {"title": "LEGO $5 $", "currency": "USD", "marker": Decimal(20)}),
        (price_history_png, (history(*[str(n % 7) for n in range(60)]),), {"title": "Sixty", "currency": "GBP"}),
        (price_distribution_png, ([Decimal("1E+12"), Decimal("3E+12")],), {"title": "Huge", "currency": "IDR"}),
    ]
    alone = [func(*args, **kwargs) for func, args, kwargs in jobs]
    barrier = threading.Barrier(len(jobs))

    def together(func: Callable[..., bytes]) -> Callable[..., bytes]:
        def call(*args: Any, **kwargs: Any) -> bytes:
            barrier.wait(timeout=60)
            return func(*args, **kwargs)
        return call

    for _round in range(3):
        results = await asyncio.gather(*(render(together(func), *args, **kwargs) for func, args, kwargs in jobs))
        assert results == alone


def test_a_fresh_process_imports_no_matplotlib_with_the_module_and_loads_it_once_from_many_threads() -> None:
    code = (
        "import sys, threading\n"
        "from concurrent.futures import ThreadPoolExecutor\n"
        "from datetime import datetime, UTC\n"
        "from decimal import Decimal\n"
        "import bot.charts as charts\n"
        "print('matplotlib' in sys.modules)\n"
        "barrier = threading.Barrier(4)\n"
        "def job(n):\n"
        "    barrier.wait(timeout=60)\n"
        "    return charts.price_history_png([(datetime(2026, 1, 1, tzinfo=UTC), Decimal(n))], title='x',"
        " currency='EUR')[:8]\n"
        "with ThreadPoolExecutor(4) as pool:\n"
        "    print(sorted(set(pool.map(job, range(4)))), len(charts._loaded))\n"
    )
    done = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, cwd=ROOT,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["False", f"[{PNG_SIGNATURE!r}] 1"]


# --- pure helpers -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ticks", "labels"),
    [
        ([80, 90, 100, 110], ["80", "90", "100", "110"]),
        ([99.5, 100.0, 100.5], ["99.5", "100.0", "100.5"]),
        ([0.25, 0.5, 0.75], ["0.25", "0.50", "0.75"]),
        ([1000, 2000, 3000], ["1,000", "2,000", "3,000"]),
        ([-0.0000000001, 5, 10], ["0", "5", "10"]),
        ([0.00008, 0.0001, 0.00012], ["0.00008", "0.00010", "0.00012"]),
        ([2_500_000, 5_000_000], ["2.5M", "5.0M"]),
        ([1e9, 2e9], ["1B", "2B"]),
        ([0.9e12, 1.0e12, 1.1e12], ["0.9T", "1.0T", "1.1T"]),
        ([1e18, 2e18], ["1.00e+18", "2.00e+18"]),
        ([1.123456789, 1.123456791], ["1.12e+00", "1.12e+00"]),
        ([42.0], ["42"]),
        ([], []),
    ],
)
def test_format_tick(ticks: list[float], labels: list[str]) -> None:
    assert [format_tick(tick, ticks) for tick in ticks] == labels


@pytest.mark.parametrize(
    ("text", "drawn"),
    [
        ("LEGO 10497", "LEGO 10497"),
        ("  two\n\tlines \r\n here ", "two lines here"),
        ("zero\u200bwidth \u202eflip\x00", "zerowidth flip"),
        ("Pokémon ポケモン", f"Pokémon {MISSING_GLYPH * 4}"),
        ("$5 \\alpha $", "$5 \\alpha $"),
    ],
)
def test_clean_text(text: str, drawn: str) -> None:
    drawable = {ord(char) for char in "LEGO 10497 two lines here zerowidth flip Pokémon $5 \\alpha"}
    assert clean_text(text, drawable) == drawn


@pytest.mark.parametrize(
    ("text", "limit", "cut"),
    [
        ("short", 10, "short"),
        ("exactly ten", 11, "exactly ten"),
        ("one two three", 8, "one two…"),
        ("one two three", 5, "one…"),
        ("abc", 0, "…"),
    ],
)
def test_cut_to_width(text: str, limit: float, cut: str) -> None:
    assert cut_to_width(text, limit, len) == cut


@pytest.mark.parametrize(("count", "bins"), [(1, 5), (8, 5), (60, 7), (1000, 11), (10**12, 30)])
def test_bin_count(count: int, bins: int) -> None:
    assert bin_count(count) == bins


def test_a_private_config_dir_only_when_the_defaults_cannot_be_written(tmp_path: Path) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    home = tmp_path / "home"
    assert not needs_private_config_dir({}, home, "linux")  # matplotlib creates ~/.config/matplotlib itself
    assert not needs_private_config_dir({"MPLCONFIGDIR": str(blocked)}, None, "linux")  # the operator's choice
    assert needs_private_config_dir({"XDG_CACHE_HOME": str(blocked / "cache")}, home, "linux")
    assert needs_private_config_dir({"XDG_CONFIG_HOME": str(blocked)}, home, "linux")
    assert needs_private_config_dir({}, blocked, "darwin")
    assert needs_private_config_dir({}, None, "linux")
    assert not needs_private_config_dir({}, blocked, "win32")
