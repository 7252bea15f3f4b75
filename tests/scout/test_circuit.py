"""The circuit breaker's transitions, as a table of fetch outcomes over time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from scout.circuit import MAX_KEY_LENGTH, Circuit, CircuitPolicy, CircuitState, admit, circuit_key, record

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
POLICY = CircuitPolicy(failure_threshold=3, base_wait=timedelta(minutes=5), max_wait=timedelta(minutes=30))


def test_opens_after_the_threshold_of_consecutive_failures() -> None:
    circuit = Circuit()
    for n in range(1, 3):
        circuit = record(circuit, ok=False, now=T0, policy=POLICY)
        assert (circuit.state, circuit.failures) == (CircuitState.CLOSED, n)
    circuit = record(circuit, ok=False, now=T0, policy=POLICY)
    assert circuit.state is CircuitState.OPEN
    assert circuit.open_until == T0 + timedelta(minutes=5)


def test_a_success_resets_the_count() -> None:
    circuit = record(record(Circuit(), ok=False, now=T0, policy=POLICY), ok=False, now=T0, policy=POLICY)
    assert record(circuit, ok=True, now=T0, policy=POLICY) == Circuit()


def test_open_admits_nothing_then_one_probe() -> None:
    circuit = Circuit(CircuitState.OPEN, 3, 1, T0 + timedelta(minutes=5))
    assert admit(circuit, T0 + timedelta(minutes=4, seconds=59)) == (0, circuit)
    allowed, probing = admit(circuit, T0 + timedelta(minutes=5))
    assert allowed == 1 and probing.state is CircuitState.HALF_OPEN


def test_a_failed_probe_reopens_for_longer_and_a_good_one_closes() -> None:
    probing = Circuit(CircuitState.HALF_OPEN, 3, 1, T0)
    again = record(probing, ok=False, now=T0, policy=POLICY)
    assert (again.state, again.openings, again.open_until) == (CircuitState.OPEN, 2, T0 + timedelta(minutes=10))
    third = record(Circuit(CircuitState.HALF_OPEN, 5, 2, T0), ok=False, now=T0, policy=POLICY)
    assert third.open_until == T0 + timedelta(minutes=20)
    capped = record(Circuit(CircuitState.HALF_OPEN, 9, 7, T0), ok=False, now=T0, policy=POLICY)
    assert capped.open_until == T0 + timedelta(minutes=30)
    assert record(probing, ok=True, now=T0, policy=POLICY) == Circuit()


def test_a_probe_out_admits_nothing_until_its_time_is_up() -> None:
    """Stored half-open: a leader's probe waits on the task queue until open_until; a lost probe is replaced."""
    out = Circuit(CircuitState.HALF_OPEN, 3, 1, T0 + timedelta(minutes=10))
    assert admit(out, T0 + timedelta(minutes=9)) == (0, out)
    allowed, probing = admit(out, T0 + timedelta(minutes=10))
    assert allowed == 1 and probing.state is CircuitState.HALF_OPEN


def test_closed_admits_everything() -> None:
    assert admit(Circuit(), T0) == (None, Circuit())


def test_a_circuit_key_names_its_marketplace_and_host_within_the_column() -> None:
    assert circuit_key("ebay") == "ebay"
    assert circuit_key("rss", "feeds.example.com") == "rss:feeds.example.com"
    long_a = circuit_key("rss", "a-very-long-subdomain.of-some.blogs.example.com")
    long_b = circuit_key("rss", "another-long-subdomain.of-some.blogs.example.com")
    assert len(long_a) == len(long_b) == MAX_KEY_LENGTH
    assert long_a.startswith("rss:#") and long_a.endswith("blogs.example.com")
    assert long_a != long_b
