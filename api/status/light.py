"""Pure: a marketplace's traffic light (ok / degraded / paused / blocked) from its state, circuit and recent fetches,
and the public summary of a scraped error."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from scout.circuit import CircuitState

if TYPE_CHECKING:
    from scout.models import MarketplaceState
    from storage.ops_queries import FetchHealth

# Of the last hour's fetches, a share failing at least this large makes a marketplace degraded even when its last
# fetch worked: one in five searches missing its scans is something users notice.
DEGRADED_SHARE = 0.2


class Light(enum.StrEnum):
    OK = "ok"  # fetches work
    DEGRADED = "degraded"  # fetches fail now and then, or the last ones failed; the circuit still lets them through
    PAUSED = "paused"  # an operator paused it: its searches wait, on purpose
    BLOCKED = "blocked"  # its circuit is open (or probing): no fetch goes out until a probe succeeds

    @property
    def label(self) -> str:
        return LABELS[self]

    @property
    def rank(self) -> int:
        """How bad, for the page's headline: a paused marketplace is known and planned, a blocked one is not."""
        return RANKS[self]


LABELS = {Light.OK: "Working", Light.DEGRADED: "Degraded", Light.PAUSED: "Paused by operators",
          Light.BLOCKED: "Blocked"}
RANKS = {Light.OK: 0, Light.PAUSED: 1, Light.DEGRADED: 2, Light.BLOCKED: 3}


@dataclass(frozen=True, slots=True)
class MarketLight:
    light: Light
    since: datetime | None  # when it came to this light, where that is known
    why: str | None  # the operator's reason, or a summary of the failure; never a scraped text


def marketplace_light(state: MarketplaceState | None, recent: FetchHealth | None, *,
                      opened_at: datetime | None = None) -> MarketLight:
    """The light of one marketplace. `recent` counts the last hour's fetches; `opened_at` is when its circuit last
    opened (the 'scrape_circuit' task logs), if that is known. No state and no fetches: not checked yet, which is
    ok (nothing failed)."""
    if state is not None and state.paused:
        return MarketLight(Light.PAUSED, state.changed_at, state.reason or "Paused for maintenance.")
    if state is not None and state.circuit.state is not CircuitState.CLOSED:
        return MarketLight(Light.BLOCKED, opened_at or state.last_failure_at,
                           summarise_error(state.last_status, state.last_error))
    ok, failing = (recent.ok, recent.failing) if recent else (0, 0)
    failing_now = state is not None and state.consecutive_failures > 0
    if failing_now or (failing and failing / (ok + failing) >= DEGRADED_SHARE):
        since = (recent.first_failure_at if recent else None) or (state.last_failure_at if state else None)
        return MarketLight(Light.DEGRADED, since,
                           summarise_error(state.last_status if state else None, state.last_error if state else None))
    if state is None or not (state.last_success_at or state.last_failure_at):
        return MarketLight(Light.OK, None, "Not checked yet.")
    return MarketLight(Light.OK, None, None)


# What a user is told for each kind of failure. The scraped text itself (a page's words, a URL with a user's
# query in it, a proxy's address) is never shown: it is read only to choose one of these.
BLOCKED_TEXT = "The marketplace is refusing our requests (a rate limit or a bot check)."
BROKEN_TEXT = "The marketplace changed its pages; listings cannot be read until we catch up."
TIMEOUT_TEXT = "The marketplace is not answering in time."
UNREACHABLE_TEXT = "The marketplace cannot be reached or answers with errors."
FAILING_TEXT = "Checks of this marketplace are failing."

_HINTS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("403", "429", "captcha", "forbidden", "too many requests", "blocked", "challenge", "login"), BLOCKED_TEXT),
    (("parse", "layout", "selector", "broken"), BROKEN_TEXT),
    (("timeout", "timed out"), TIMEOUT_TEXT),
    (("500", "502", "503", "504", "connect", "dns", "unreachable", "reset", "refused"), UNREACHABLE_TEXT),
)


def summarise_error(status: str | None, error: str | None) -> str:
    """One of a few fixed sentences for a failure, chosen by its status, else by words in its error."""
    if status == "blocked":
        return BLOCKED_TEXT
    if status == "broken":
        return BROKEN_TEXT
    text = (error or "").lower()
    for words, sentence in _HINTS:
        if any(word in text for word in words):
            return sentence
    return FAILING_TEXT
