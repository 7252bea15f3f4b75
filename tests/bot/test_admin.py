"""Operator commands: refused to non-operators, audited, announced, and the runbook's remedies applied."""

from __future__ import annotations

import pytest

from bot.admin import AdminCommands
from bot.commands import Actor, Commands
from scout.circuit import Circuit, CircuitState, Transition
from scout.errors import InputError, PermissionDeniedError
from scout.models import Destination, FetchOutcome
from storage.repo import Repository
from tests.fakes.adapters import TableAdapter
from tests.scout.clock import ManualClock

OPERATOR = Actor("op", is_operator=True)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def heard() -> list[str]:
    return []


@pytest.fixture
def admin(repo: Repository, clock: ManualClock, heard: list[str]) -> AdminCommands:
    async def announce(message: str) -> None:
        heard.append(message)

    return AdminCommands(repo, {"fakebay": TableAdapter()}, clock=clock, announce=announce)


@pytest.mark.parametrize("actor", [Actor("user"), Actor("server-manager", is_admin=True)])
async def test_non_operators_are_refused_everything(admin: AdminCommands, actor: Actor) -> None:
    for call in (admin.pause_marketplace(actor, "fakebay", "x"), admin.resume_marketplace(actor, "fakebay"),
                 admin.back_off_marketplace(actor, "fakebay"), admin.status(actor), admin.recent_failures(actor)):
        with pytest.raises(PermissionDeniedError, match="Only Deal Scout operators"):
            await call


async def test_pause_and_resume_are_audited_and_announced(admin: AdminCommands, repo: Repository,
                                                          heard: list[str]) -> None:
    message = await admin.pause_marketplace(OPERATOR, "FakeBay", "  blocking us   since 10:00 ")
    assert message == "FakeBay paused by op: blocking us since 10:00. Its searches are skipped until resumed."
    state = (await repo.load_marketplace_states())["fakebay"]
    assert (state.paused, state.reason, state.changed_by) == (True, "blocking us since 10:00", "op")
    await admin.resume_marketplace(OPERATOR, "fakebay")
    assert not (await repo.load_marketplace_states())["fakebay"].paused
    assert heard == [message, "FakeBay resumed by op."]


async def test_unknown_marketplace(admin: AdminCommands) -> None:
    with pytest.raises(InputError, match="Unknown marketplace 'nope'"):
        await admin.pause_marketplace(OPERATOR, "nope", None)


async def test_back_off_doubles_intervals_up_to_two_hours(admin: AdminCommands, repo: Repository,
                                                          clock: ManualClock) -> None:
    commands = Commands(repo, admin.adapters, clock=clock)
    for every in ("10", "90", "120"):
        await commands.add_search(Actor("a"), Destination("console", "main"), query="lego", interval_minutes=every)
    message = await admin.back_off_marketplace(OPERATOR, "fakebay")
    assert "2 active searches" in message
    assert [s.spec.check_interval_minutes for s in await repo.load_searches()] == [20, 120, 120]


async def test_status_and_failures_summaries(admin: AdminCommands, repo: Repository, clock: ManualClock) -> None:
    fetches = [FetchOutcome("fakebay", "lego", "blocked", 3, error="HTTP 429"),
               FetchOutcome("fakebay", "duplo", "success", 3)]
    await repo.save_scan(now=clock(), fetches=fetches, runs=[], searches={})
    status = await admin.status(OPERATOR)
    assert "FakeBay: active, last success 12:00, last result success" in status
    assert "Outbox: 0 pending, 0 dead, 0 sent" in status
    failures = await admin.recent_failures(OPERATOR)
    assert "- fakebay blocked: 1" in failures and "- fakebay: HTTP 429 \u00d71" in failures
    clock.advance(hours=2)
    assert await admin.recent_failures(OPERATOR) == "No marketplace fetches in the last 1 h."


async def test_failures_count_fetches_and_circuit_openings_apart(admin: AdminCommands, repo: Repository,
                                                                 clock: ManualClock) -> None:
    """Regression: a circuit opening was logged as one more failed fetch, so five failed fetches read as six."""
    failed = [FetchOutcome("fakebay", f"lego {n}", "failed", 1, error="timed out") for n in range(5)]
    opened = Transition("fakebay", CircuitState.CLOSED, CircuitState.OPEN, Circuit(CircuitState.OPEN),
                        "5 failures in a row")
    await repo.save_scan(now=clock(), fetches=failed, runs=[], searches={}, transitions=[opened])
    failures = await admin.recent_failures(OPERATOR)
    assert "- fakebay failed: 5\n" in failures and "- fakebay: timed out \u00d75" in failures
    assert "5 failures in a row" not in failures
    assert failures.endswith("fakebay's circuit opened 1 time.")


@pytest.mark.parametrize(("reason", "message"), [
    ("blocked\x00", "The reason contains control characters."),
    ("x" * 201, "The reason is 201 characters long; the limit is 200."),
])
async def test_a_reason_that_cannot_be_stored_is_refused(admin: AdminCommands, repo: Repository, reason: str,
                                                         message: str) -> None:
    """Regression: a NUL in an operator's reason failed on PostgreSQL (marketplace_state.reason) with a database
    error; a long one was cut without a word."""
    with pytest.raises(InputError) as refused:
        await admin.pause_marketplace(OPERATOR, "fakebay", reason)
    assert str(refused.value) == message
    assert "fakebay" not in await repo.load_marketplace_states()
