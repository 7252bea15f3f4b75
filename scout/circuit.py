"""Per-marketplace circuit breaker, pure: closed → open after repeated failures → half-open probe → closed.

A marketplace whose hosts are its users' choice (feeds) keeps one circuit per host instead, so one user's dead
or refused feed never stops anyone else's.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

# A circuit is stored under its key in marketplace_state.marketplace, 32 characters (storage.tables).
MAX_KEY_LENGTH = 32
_DIGEST_LENGTH = 8


class CircuitState(enum.StrEnum):
    CLOSED = "closed"  # fetch as usual
    OPEN = "open"  # fetch nothing until the wait is over
    HALF_OPEN = "half_open"  # let one probe through; its outcome decides


@dataclass(frozen=True, slots=True)
class CircuitPolicy:
    failure_threshold: int = 5
    base_wait: timedelta = timedelta(minutes=5)
    max_wait: timedelta = timedelta(hours=6)

    def wait(self, openings: int) -> timedelta:
        """Exponential: the base wait, doubled for each time the circuit re-opened without a success between."""
        return min(self.max_wait, self.base_wait * (2 ** max(0, openings - 1)))


@dataclass(frozen=True, slots=True)
class Circuit:
    state: CircuitState = CircuitState.CLOSED
    failures: int = 0  # consecutive failed fetches
    openings: int = 0  # consecutive openings, for the backoff
    open_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class Transition:
    marketplace: str
    before: CircuitState
    after: CircuitState
    circuit: Circuit
    reason: str
    host: str | None = None  # the host whose circuit it is, for a marketplace that keeps one per host

    @property
    def key(self) -> str:
        return circuit_key(self.marketplace, self.host)


def circuit_key(marketplace: str, host: str | None = None) -> str:
    """The key a circuit is stored under: the marketplace's ("ebay"), or one host's ("rss:feeds.example.com").

    A host too long for the key keeps its end (the part an operator recognises), after a digest of the whole
    name that keeps two long hosts apart: "rss:#1f0c2a9b~ong.blogs.example.com".
    """
    if host is None:
        return marketplace
    key = f"{marketplace}:{host}"
    if len(key) <= MAX_KEY_LENGTH:
        return key
    digest = hashlib.sha256(host.encode()).hexdigest()[:_DIGEST_LENGTH]
    head = f"{marketplace}:#{digest}~"
    return head + host[len(head) - MAX_KEY_LENGTH:]


def admit(circuit: Circuit, now: datetime) -> tuple[int | None, Circuit]:
    """How many fetches the circuit lets through now (None: no limit, 0: none) and its state after asking.

    An open circuit lets nothing through until `open_until`, then one probe. A half-open circuit as stored has a
    probe out (a leader's, on the task queue) until `open_until`: nothing more goes, unless that time passed with
    no outcome (the probe was lost), when another probe may go."""
    if circuit.state is CircuitState.CLOSED:
        return None, circuit
    if circuit.open_until is not None and now < circuit.open_until:
        return 0, circuit
    return 1, replace(circuit, state=CircuitState.HALF_OPEN)


def record(circuit: Circuit, *, ok: bool, now: datetime, policy: CircuitPolicy) -> Circuit:
    """The circuit after one fetch outcome."""
    if ok:
        return Circuit()
    failures = circuit.failures + 1
    if circuit.state is CircuitState.HALF_OPEN or (
        circuit.state is CircuitState.CLOSED and failures >= policy.failure_threshold
    ):
        openings = circuit.openings + 1
        return Circuit(CircuitState.OPEN, failures, openings, now + policy.wait(openings))
    return replace(circuit, failures=failures)
