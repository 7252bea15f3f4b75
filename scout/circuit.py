"""Per-marketplace circuit breaker, pure: closed → open after repeated failures → half-open probe → closed."""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import datetime, timedelta


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


def admit(circuit: Circuit, now: datetime) -> tuple[int | None, Circuit]:
    """How many fetches the circuit lets through now (None: no limit, 0: none) and its state after asking."""
    if circuit.state is CircuitState.CLOSED:
        return None, circuit
    if circuit.state is CircuitState.OPEN and circuit.open_until is not None and now < circuit.open_until:
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
