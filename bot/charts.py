"""PNG price charts for deal alerts: a listing's price over time, and its price among comparable listings.

Charts are drawn headless on matplotlib's Agg canvas with one `Figure` per call and no pyplot, so no figure
registry or current-figure state is shared: several renders may run in worker threads at once (`render`).
Matplotlib is imported on the first render, not with this module, so importing it costs other modules nothing.
"""

from __future__ import annotations

import asyncio
import atexit
import io
import itertools
import logging
import math
import os
import shutil
import sys
import tempfile
import threading
import unicodedata
from collections.abc import Callable, Container, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from statistics import median as median_of
from typing import TYPE_CHECKING, ParamSpec

from scout.sparkline import format_price

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)

# 800x450 px at 100 dpi: 16:9 shows whole in a Telegram photo and a Discord embed image, and comes to some 30-60 KB
# of PNG, far under Telegram's 10 MB photo limit and Discord's 8 MB attachment limit.
WIDTH_INCHES = 8.0
HEIGHT_INCHES = 4.5
DPI = 100
# The title is one line of 12 pt text from the figure's left edge: 800 px less the 1% inset and constrained
# layout's pads on both sides, rounded down.
TITLE_POINTS = 12
TITLE_INSET = 0.01
TITLE_MAX_PIXELS = 770.0
# Scraped titles are cleaned and measured only up to these many characters: more never fit on the line anyway.
TITLE_CHARS = 200
# ISO 4217 codes have three letters; the bound only keeps a bad value from crowding the axis label.
CURRENCY_CHARS = 8
# Sturges' rule (log2(n) + 1 bins) within these bounds: fewer bins hide the shape, more make a few dozen listings
# look like noise, and a bound keeps scraped outliers from asking for millions of bins.
MIN_BINS = 5
MAX_BINS = 30
# Tick labels get no more places than this; an axis that needs more is drawn in scientific notation.
MAX_TICK_PLACES = 8
# From these magnitudes an amount axis counts in millions, billions or trillions instead of printing every digit.
TICK_SCALES = ((1e12, "T"), (1e9, "B"), (1e6, "M"))
SCIENTIFIC_FROM = 1e15
# Fonts tried in order for scraped text; matplotlib's bundled DejaVu Sans is always there, the others
# (Debian's fonts-noto-cjk and fonts-droid-fallback) add Japanese, Chinese and Korean where the host has them.
FONT_FAMILIES = ("DejaVu Sans", "Noto Sans CJK JP", "Noto Sans CJK SC", "Noto Sans CJK KR", "Droid Sans Fallback")
# Drawn instead of a character no font has: a box says "something was here", as a browser's fallback does.
MISSING_GLYPH = "□"
LINE_COLOUR = "#1f6fb4"
MARKER_COLOUR = "#d62728"
MEDIAN_COLOUR = "#444444"
BAR_COLOUR = "#9fc5e8"

SINGLE_MOMENT_SPAN = timedelta(days=1)

P = ParamSpec("P")


@dataclass(frozen=True, slots=True)
class _Kit:
    """What the first render loads once: the fonts for scraped text and the amount axis' formatter class."""

    families: tuple[str, ...]
    covered: frozenset[int]
    amount_formatter: type


_load_lock = threading.Lock()
_loaded: list[_Kit] = []


# --- pure helpers -------------------------------------------------------------------------------------------------


def clean_text(text: str, drawable: Container[int] | None = None) -> str:
    """Scraped text made safe to draw on one line: whitespace runs become one space, control and format characters
    go, and characters no font can draw become MISSING_GLYPH (instead of a warning and an empty box per render)."""
    kept = (char for char in " ".join(text.split()) if unicodedata.category(char) not in ("Cc", "Cf", "Cs"))
    return "".join(char if drawable is None or ord(char) in drawable else MISSING_GLYPH for char in kept)


def cut_to_width(text: str, limit: float, width_of: Callable[[str], float]) -> str:
    """The longest start of `text` that, with "…" after it, is at most `limit` wide; `text` itself when it fits."""
    if width_of(text) <= limit:
        return text
    low, high = 0, len(text)  # the longest fitting prefix has low <= length < high characters
    while high - low > 1:
        middle = (low + high) // 2
        if width_of(text[:middle].rstrip() + "…") <= limit:
            low = middle
        else:
            high = middle
    return text[:low].rstrip() + "…"


def format_tick(value: float, ticks: Sequence[float]) -> str:
    """One label of an amount axis whose ticks are `ticks`: thousands grouped, millions and up counted as M/B/T,
    and as many places as the tick spacing needs, the same for every label of the axis."""
    top = max((abs(tick) for tick in ticks), default=abs(value)) or abs(value)
    if top >= SCIENTIFIC_FROM:
        return f"{value:.2e}"
    scale, suffix = next(((size, name) for size, name in TICK_SCALES if top >= size), (1.0, ""))
    scaled = sorted(tick / scale for tick in ticks) or [value / scale]
    gaps = [b - a for a, b in itertools.pairwise(scaled) if b > a]
    step = min(gaps) if gaps else abs(scaled[0]) or 1.0
    places = next((p for p in range(MAX_TICK_PLACES + 1)
                   if all(abs(tick - round(tick, p)) <= step * 1e-6 for tick in scaled)), None)
    if places is None:
        return f"{value:.2e}"
    number = round(value / scale, places) or 0.0  # a rounded -0.0 becomes 0.0: never a "-0" label
    return f"{number:,.{places}f}{suffix}"


def bin_count(count: int) -> int:
    """How many bars a histogram of `count` prices gets (Sturges' rule, bounded)."""
    return max(MIN_BINS, min(MAX_BINS, math.ceil(math.log2(max(count, 1))) + 1))


def _finite(amount: Decimal, what: str) -> float:
    number = float(amount)
    if not math.isfinite(number):
        raise ValueError(f"{what} {amount} cannot be drawn: charts need finite amounts within a float's range")
    return number


def matplotlib_dirs(environ: Mapping[str, str], home: Path, platform: str) -> tuple[Path, ...]:
    """Where matplotlib keeps its settings and font cache when MPLCONFIGDIR is unset (its own rule, per platform;
    Windows, not a deployment target here, is left to matplotlib)."""
    if platform.startswith(("linux", "freebsd")):
        return (Path(environ.get("XDG_CONFIG_HOME") or home / ".config") / "matplotlib",
                Path(environ.get("XDG_CACHE_HOME") or home / ".cache") / "matplotlib")
    if platform == "win32":
        return ()
    return (home / ".matplotlib",)


def _writable(path: Path) -> bool:
    """Whether matplotlib could create or write `path`: the nearest existing ancestor must be a writable folder."""
    try:
        while not path.exists():
            if path.parent == path:
                return False
            path = path.parent
        return path.is_dir() and os.access(path, os.W_OK | os.X_OK)
    except OSError:
        return False


def needs_private_config_dir(environ: Mapping[str, str], home: Path | None, platform: str) -> bool:
    """Whether matplotlib's default folders are unusable (a read-only image, no home), so that it should be given
    a temporary MPLCONFIGDIR; a MPLCONFIGDIR the operator set is always kept."""
    if environ.get("MPLCONFIGDIR"):
        return False
    if home is None:
        return True
    return not all(_writable(path) for path in matplotlib_dirs(environ, home, platform))


# --- loading matplotlib -------------------------------------------------------------------------------------------


def _home() -> Path | None:
    try:
        return Path.home()
    except RuntimeError:
        return None


def _amount_formatter_class() -> type:
    from matplotlib.ticker import Formatter

    class AmountFormatter(Formatter):
        """format_tick for every label of an axis at once, so that they all get the same places."""

        def __call__(self, x: float, pos: int | None = None) -> str:
            return format_tick(x, (x,))

        def format_ticks(self, values: Sequence[float]) -> list[str]:
            return [format_tick(value, values) for value in values]

    return AmountFormatter


def _load() -> _Kit:
    """Import matplotlib once, in whichever thread renders first, and find the fonts for scraped text.

    MPLCONFIGDIR must be settled before the import; matplotlib would fall back to a temporary folder by itself,
    but with a warning on every start.
    """
    with _load_lock:
        if _loaded:
            return _loaded[0]
        if needs_private_config_dir(os.environ, _home(), sys.platform):
            folder = tempfile.mkdtemp(prefix="dealscout-matplotlib-")
            atexit.register(shutil.rmtree, folder, ignore_errors=True)
            os.environ["MPLCONFIGDIR"] = folder
            log.info("matplotlib's default folders are not writable; its font cache lives in %s", folder)
        from matplotlib import font_manager

        installed = set(font_manager.fontManager.get_font_names())
        families = tuple(family for family in FONT_FAMILIES if family in installed)
        paths = tuple(font_manager.findfont(font_manager.FontProperties(family=family), fallback_to_default=False)
                      for family in families)
        covered = frozenset(code for path in paths for code in font_manager.get_font(path).get_charmap())
        _loaded.append(_Kit(families, covered, _amount_formatter_class()))
        return _loaded[0]


def _new_figure() -> tuple[Figure, Axes]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(WIDTH_INCHES, HEIGHT_INCHES), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.grid(True, color="#dddddd", linewidth=0.8)
    axes.set_axisbelow(True)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    return figure, axes


def _title(figure: Figure, title: str, kit: _Kit) -> None:
    from matplotlib.font_manager import FontProperties

    # Measured by the renderer that will draw it (hinted advances; matplotlib keys its FreeType objects on the
    # thread, so this is safe beside other renders); the canvas keeps and reuses this renderer for the draw.
    renderer = figure.canvas.get_renderer()  # type: ignore[attr-defined]
    font = FontProperties(family=list(kit.families), size=TITLE_POINTS)

    def width_of(text: str) -> float:
        return float(renderer.get_text_width_height_descent(text, font, ismath=False)[0])

    cleaned = clean_text(title[:4 * TITLE_CHARS], kit.covered)[:TITLE_CHARS]  # 4x: room for whitespace runs
    text = cut_to_width(cleaned, TITLE_MAX_PIXELS, width_of)
    # parse_math=False: a scraped "$5 - $10" must stay text, never reach mathtext (or TeX, hence usetex=False).
    figure.suptitle(text, x=TITLE_INSET, ha="left", fontproperties=font, parse_math=False, usetex=False)


def _unit(currency: str, kit: _Kit) -> str:
    return clean_text(currency, kit.covered)[:CURRENCY_CHARS]


def _label(text: str, unit: str) -> str:
    return f"{text} ({unit})" if unit else text


def to_png(figure: Figure) -> bytes:
    """The figure as PNG bytes at its own size; Figure.draw holds matplotlib's render lock for the shared caches."""
    buffer = io.BytesIO()
    figure.canvas.print_png(buffer)  # type: ignore[attr-defined]
    return buffer.getvalue()


# --- the charts ---------------------------------------------------------------------------------------------------


def build_price_history_figure(points: Sequence[tuple[datetime, Decimal]], *, title: str, currency: str) -> Figure:
    """A listing's price as a step line (a price holds until the next observation), a marker on each
    observation and the current price written by the last one. Points may come in any order."""
    if not points:
        raise ValueError("a price history chart needs at least one (time, price) point; got none")
    try:
        ordered = sorted(points, key=lambda point: point[0])
    except TypeError as err:
        raise ValueError("price history times must be all timezone-aware or all naive, not a mix") from err
    kit = _load()
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    times = [when for when, _amount in ordered]
    amounts = [_finite(amount, "price") for _when, amount in ordered]
    unit = _unit(currency, kit)
    figure, axes = _new_figure()
    axes.step(times, amounts, where="post", color=LINE_COLOUR, linewidth=2, marker="o", markersize=5)
    axes.annotate(f"now {format_price(ordered[-1][1])} {unit}".rstrip(),
                  xy=(times[-1], amounts[-1]), xytext=(-8, 10), textcoords="offset points", ha="right",
                  va="bottom", fontsize=10, fontweight="bold", color=LINE_COLOUR, parse_math=False, usetex=False,
                  bbox={"boxstyle": "round,pad=0.3", "facecolor": "white", "edgecolor": "#bbbbbb"})
    # Room above the highest point for the current price's label, and beside the ends for their markers.
    axes.margins(x=0.04, y=0.18)
    if times[0] == times[-1]:
        # One moment only: matplotlib would widen the axis to years around it; a day either side reads as a date.
        axes.set_xlim(times[0] - SINGLE_MOMENT_SPAN, times[0] + SINGLE_MOMENT_SPAN)
    zone = times[0].tzinfo
    locator = AutoDateLocator(tz=zone, minticks=3, maxticks=8)
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(ConciseDateFormatter(locator, tz=zone, usetex=False))
    axes.yaxis.set_major_formatter(kit.amount_formatter())
    axes.set_ylabel(_label("Price", unit), parse_math=False, usetex=False)
    _title(figure, title, kit)
    return figure


def build_price_distribution_figure(prices: Sequence[Decimal], *, title: str, currency: str,
                                    marker: Decimal | None = None, median: Decimal | None = None) -> Figure:
    """A histogram of comparable listings' prices, their median as a dashed line, and `marker` (one listing's
    price) as a solid one. The median is computed from `prices` when not given."""
    if not prices:
        raise ValueError("a price distribution chart needs at least one price; got none")
    kit = _load()
    from matplotlib.ticker import MaxNLocator

    amounts = [_finite(amount, "price") for amount in prices]
    middle = median_of(prices) if median is None else median
    unit = _unit(currency, kit)
    low, high = min(amounts), max(amounts)
    if low == high:
        # One distinct price: numpy would widen the range by ±0.5, which vanishes on amounts past 2**53.
        pad = abs(low) * 0.05 or 1.0
        low, high = low - pad, high + pad
    figure, axes = _new_figure()
    count = len(amounts)
    axes.hist(amounts, bins=bin_count(count), range=(low, high), color=BAR_COLOUR, edgecolor="white",
              label=f"{count} comparable listing{'s' if count != 1 else ''}")
    axes.axvline(_finite(middle, "median"), color=MEDIAN_COLOUR, linestyle="--", linewidth=1.6,
                 label=f"median {format_price(middle)} {unit}".rstrip())
    if marker is not None:
        axes.axvline(_finite(marker, "marker"), color=MARKER_COLOUR, linewidth=2.2,
                     label=f"this listing {format_price(marker)} {unit}".rstrip())
    legend = axes.legend(loc="upper right", fontsize=9, framealpha=0.9)
    for text in legend.get_texts():
        text.set_parse_math(False)
    axes.xaxis.set_major_formatter(kit.amount_formatter())
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel(_label("Price", unit), parse_math=False, usetex=False)
    axes.set_ylabel("Listings")
    _title(figure, title, kit)
    return figure


def price_history_png(points: Sequence[tuple[datetime, Decimal]], *, title: str, currency: str) -> bytes:
    """build_price_history_figure as an 800x450 PNG. Raises ValueError for no points or an undrawable price."""
    return to_png(build_price_history_figure(points, title=title, currency=currency))


def price_distribution_png(prices: Sequence[Decimal], *, title: str, currency: str, marker: Decimal | None = None,
                           median: Decimal | None = None) -> bytes:
    """build_price_distribution_figure as an 800x450 PNG. Raises ValueError for no prices or an undrawable one."""
    return to_png(build_price_distribution_figure(prices, title=title, currency=currency, marker=marker,
                                                  median=median))


async def render(func: Callable[P, bytes], /, *args: P.args, **kwargs: P.kwargs) -> bytes:
    """Run one chart function in a worker thread: a render takes a tenth of a second of CPU (and the first one
    imports matplotlib), which the event loop must not wait through."""
    return await asyncio.to_thread(func, *args, **kwargs)
