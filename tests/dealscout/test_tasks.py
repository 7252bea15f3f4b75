"""The leader's claims and the workers' run_search_task, in process: each fetch group is committed once, only while
its lease holds, a task that arrives twice commits nothing, and a spent request budget puts a task off."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import pytest

from bot.commands import Actor, Commands
from dealscout.cli import describe_health
from dealscout.leader import TaskScanner
from dealscout.worker import TaskRunner
from scout.circuit import CircuitPolicy, CircuitState
from scout.config import load_settings
from scout.models import Destination
from scrapers.base import ScrapeResult, SearchQuery
from scrapers.shared_budget import BudgetDenied
from storage.claims import ScanTasks
from storage.repo import Repository
from tests.fakes.adapters import TableAdapter, make_listing
from tests.scout.clock import ManualClock

DEST = Destination("console", "main")
SETTINGS = load_settings({"BASELINE_FIRST_SCAN": "false", "SCAN_LEASE_SECONDS": "300"}, env_file=None)


class Queue:
    """The broker as the leader sees it: what was sent, in order, and whether it takes messages."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.down = False

    async def send(self, tokens: Sequence[str]) -> None:
        if self.down:
            raise ConnectionError("Error 111 connecting to 127.0.0.1:6399. Connection refused.")
        self.sent.extend(tokens)

    async def depth(self) -> int:
        return len(self.sent)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def market() -> TableAdapter:
    return TableAdapter()


@pytest.fixture
def second() -> TableAdapter:
    return TableAdapter(key="fakeshop", name="FakeShop")


@pytest.fixture
def tasks(repo: Repository) -> ScanTasks:
    return ScanTasks(repo._sessions)


@dataclass
class Spent(TableAdapter):
    """FakeBay whose shared request budget refuses its next `denied` fetches, saying to wait `wait` seconds."""

    denied: int = 0
    wait: float = 20.0

    async def search(self, query, fetcher):  # type: ignore[no-untyped-def]
        if self.denied:
            self.denied -= 1
            raise BudgetDenied("fakebay.test", self.wait)
        return await super().search(query, fetcher)


@dataclass
class SpentFeeds(Spent):
    """The same as a feed marketplace: every query's fetch counts against the circuit of one feed host."""

    def circuit_host(self, query: SearchQuery) -> str:
        return "feeds.example"

    async def check_address(self, query: SearchQuery) -> None:
        return None


def leader(repo: Repository, adapters: dict[str, TableAdapter], clock: ManualClock, tasks: ScanTasks,
           queue: Queue, max_backlog: int = 1000, on_broker=None) -> TaskScanner:  # type: ignore[no-untyped-def]
    return TaskScanner(repo, adapters, None, clock=clock, jitter=0.0, baseline_first_scan=False, tasks=tasks,
                       send=queue.send, backlog=queue.depth, max_backlog=max_backlog, on_broker=on_broker)


def worker(repo: Repository, adapters: dict[str, TableAdapter], clock: ManualClock, tasks: ScanTasks) -> TaskRunner:
    return TaskRunner(SETTINGS, repo, tasks, adapters, None, clock=clock)  # type: ignore[arg-type]


async def test_each_fetch_group_is_one_task_and_commits_once(
    repo: Repository, market: TableAdapter, second: TableAdapter, clock: ManualClock, tasks: ScanTasks,
) -> None:
    adapters = {market.key: market, second.key: second}
    commands = Commands(repo, adapters, clock=clock)
    both = await commands.add_search(Actor("a"), DEST, query="lego", marketplaces="fakebay,fakeshop")
    same = await commands.add_search(Actor("b"), Destination("console", "b"), query="LEGO", marketplaces="fakebay")
    market.serve("lego", make_listing(1, "Lego castle"))
    second.serve("lego", make_listing(2, "Lego ship", marketplace="fakeshop"))
    queue = Queue()
    clock.advance(seconds=10)
    report = await leader(repo, adapters, clock, tasks, queue).run_until_idle()
    assert (report.searches, report.fetches) == (2, 2)
    assert len(queue.sent) == 2 and not market.calls  # the leader fetches nothing itself
    runner = worker(repo, adapters, clock, tasks)
    first = await runner.run(queue.sent[0])
    assert first.status == "done"
    # The search on two marketplaces is still leased until its second task commits.
    assert (await repo.load_search(both.id)).last_run_at is None
    again = await runner.run(queue.sent[0])  # redelivered after the commit
    assert again.status == "duplicate"
    last = await runner.run(queue.sent[1])
    assert last.status == "done"
    for search in (both, same):
        saved = await repo.load_search(search.id)
        assert saved.last_run_at is not None and saved.next_run_at > clock()
    logs = await repo.load_task_logs(since=clock().replace(year=2000))
    assert sorted(log.marketplace for log in logs) == ["fakebay", "fakeshop"]
    # Three alerts: "lego castle" for both searches, "lego ship" for the first only, each queued once.
    assert first.alerts_queued + last.alerts_queued == 3
    assert (await runner.run(queue.sent[1])).status == "duplicate"


async def test_a_task_whose_lease_passed_to_a_newer_claim_commits_nothing(
    repo: Repository, market: TableAdapter, clock: ManualClock, tasks: ScanTasks,
) -> None:
    adapters = {market.key: market}
    await Commands(repo, adapters, clock=clock).add_search(Actor("a"), DEST, query="lego")
    market.serve("lego", make_listing(1, "Lego castle"))
    queue = Queue()
    clock.advance(seconds=10)
    await leader(repo, adapters, clock, tasks, queue).run_until_idle()
    stale = queue.sent[0]
    clock.advance(seconds=301)  # the task was lost: the lease expires and the leader claims the search again
    await leader(repo, adapters, clock, tasks, queue).run_until_idle()
    assert len(queue.sent) == 2
    runner = worker(repo, adapters, clock, tasks)
    assert (await runner.run(stale)).status == "void"
    assert not market.calls  # a task whose searches are no longer its own does not even fetch
    assert (await runner.run(queue.sent[1])).status == "done"
    assert len(market.calls) == 1


async def test_a_spent_budget_puts_the_task_off_and_the_leader_sends_it_again(
    repo: Repository, market: TableAdapter, clock: ManualClock, tasks: ScanTasks,
) -> None:
    spent = Spent(denied=1)
    spent.serve("lego", make_listing(1, "Lego castle"))
    adapters = {spent.key: spent}
    await Commands(repo, adapters, clock=clock).add_search(Actor("a"), DEST, query="lego")
    queue = Queue()
    clock.advance(seconds=10)
    boss = leader(repo, adapters, clock, tasks, queue)
    await boss.run_until_idle()
    runner = worker(repo, adapters, clock, tasks)
    assert (await runner.run(queue.sent[0])).status == "deferred"
    await boss.run_until_idle()
    assert len(queue.sent) == 1  # not due again yet
    clock.advance(seconds=21)
    await boss.run_until_idle()
    assert queue.sent == [queue.sent[0]] * 2  # the same task, sent again
    assert (await runner.run(queue.sent[1])).status == "done"


async def test_while_the_broker_is_down_nothing_new_is_claimed(
    repo: Repository, market: TableAdapter, clock: ManualClock, tasks: ScanTasks,
) -> None:
    adapters = {market.key: market}
    commands = Commands(repo, adapters, clock=clock)
    await commands.add_search(Actor("a"), DEST, query="lego")
    queue = Queue()
    queue.down = True
    clock.advance(seconds=10)
    told: list[str | None] = []

    async def tell(news: str | None) -> None:
        told.append(news)

    boss = leader(repo, adapters, clock, tasks, queue, on_broker=tell)
    await boss.run_until_idle()
    await boss.run_until_idle()
    assert boss.broker_error and "Connection refused" in boss.broker_error
    assert len(told) == 1 and "unreachable" in (told[0] or "")  # told once, not every tick
    await commands.add_search(Actor("a"), DEST, query="duplo")
    clock.advance(seconds=10)
    report = await boss.run_until_idle()
    assert report.searches == 0  # the duplo search waits in the database
    queue.down = False
    await boss.run_until_idle()
    assert len(queue.sent) == 2 and boss.broker_error is None
    assert told[1:] == [None]  # and told when it is back


async def test_a_second_copy_of_a_running_task_is_left_alone_unless_its_worker_died(
    repo: Repository, market: TableAdapter, clock: ManualClock, tasks: ScanTasks,
) -> None:
    adapters = {market.key: market}
    await Commands(repo, adapters, clock=clock).add_search(Actor("a"), DEST, query="lego")
    queue = Queue()
    clock.advance(seconds=10)
    await leader(repo, adapters, clock, tasks, queue).run_until_idle()
    [token] = queue.sent
    now = clock()
    assert await tasks.start(token, now=now, stale_before=now, redelivered=False)
    # The same message twice (sent twice, or handed to a second worker): the copy finds it running.
    assert (await worker(repo, adapters, clock, tasks).run(token)).status == "duplicate"
    assert not market.calls
    # Given back by the broker because its worker died: the task runs again, and commits once.
    assert (await worker(repo, adapters, clock, tasks).run(token, redelivered=True)).status == "done"
    assert len(market.calls) == 1


async def test_a_put_off_task_is_never_lost_to_the_leader_marking_it_sent(
    repo: Repository, market: TableAdapter, clock: ManualClock, tasks: ScanTasks,
) -> None:
    """Regression: a worker put a task off while the leader was still marking it sent; the leader's mark won, and
    the task was never sent again until its lease ended."""
    adapters = {market.key: market}
    await Commands(repo, adapters, clock=clock).add_search(Actor("a"), DEST, query="lego")
    clock.advance(seconds=10)
    sent: list[str] = []

    async def send_and_put_off(tokens: Sequence[str]) -> None:
        sent.extend(tokens)
        task = await tasks.load(tokens[0])
        assert task is not None
        await tasks.defer(task, due_at=clock() + timedelta(seconds=2), lease_until=clock() + timedelta(minutes=9),
                          circuit=task.marketplace)

    boss = TaskScanner(repo, adapters, None, clock=clock, jitter=0.0, baseline_first_scan=False, tasks=tasks,
                       send=send_and_put_off, backlog=Queue().depth, max_backlog=10)
    await boss.run_until_idle()
    clock.advance(seconds=3)
    assert await tasks.take_due(now=clock(), limit=10) == sent  # due again, not lost


async def opened_circuit(repo: Repository, market: TableAdapter, clock: ManualClock, tasks: ScanTasks,
                         *queries: str, circuit: str = "fakebay") -> tuple[TaskScanner, TaskRunner, Queue]:
    """A leader and a worker with 20-minute leases, whose circuits open at the first failure for 10 minutes, after
    the first fetches of `queries` (every five minutes each) were answered HTTP 429: the circuit stored under the key
    `circuit` is open."""
    adapters = {market.key: market}
    commands = Commands(repo, adapters, clock=clock)
    for query in queries:
        await commands.add_search(Actor("a"), DEST, query=query, interval_minutes="5")
        market.results[query] = ScrapeResult.blocked("HTTP 429")
    queue = Queue()
    boss = TaskScanner(repo, adapters, None, clock=clock, jitter=0.0, baseline_first_scan=False, tasks=tasks,
                       send=queue.send, backlog=queue.depth, max_backlog=1000, lease_seconds=1200,
                       circuit_policy=CircuitPolicy(failure_threshold=1, base_wait=timedelta(seconds=600)))
    settings = load_settings({"BASELINE_FIRST_SCAN": "false", "SCAN_LEASE_SECONDS": "1200",
                              "CIRCUIT_FAILURE_THRESHOLD": "1", "CIRCUIT_BASE_WAIT_SECONDS": "600"}, env_file=None)
    runner = TaskRunner(settings, repo, tasks, adapters, None, clock=clock)  # type: ignore[arg-type]
    clock.advance(seconds=10)
    await boss.run_until_idle()
    for token in list(queue.sent):
        await runner.run(token)
    assert (await repo.load_marketplace_states())[circuit].circuit.state is CircuitState.OPEN
    return boss, runner, queue


async def test_an_open_circuit_has_one_probe_out_at_a_time_and_a_failed_probe_waits_longer(
    repo: Repository, market: TableAdapter, clock: ManualClock, tasks: ScanTasks,
) -> None:
    """The leader's probe is held in the database until a worker has run it: later claims send no second probe
    meanwhile, and a probe that fails opens the circuit again for a longer wait."""
    boss, runner, queue = await opened_circuit(repo, market, clock, tasks, "lego", "duplo", "brio")
    assert (await repo.load_marketplace_states())["fakebay"].circuit.openings == 1

    clock.advance(minutes=11)  # the wait is over: one probe goes out
    await boss.run_until_idle()
    assert len(queue.sent) == 4
    probe = queue.sent[-1]
    out = (await repo.load_marketplace_states())["fakebay"]
    assert describe_health(out).startswith("circuit half_open, probing until ")
    clock.advance(minutes=5, seconds=1)  # the other searches are due again while the probe waits on the queue
    await boss.run_until_idle()
    assert len(queue.sent) == 4
    assert (await runner.run(probe)).status == "done"
    again = (await repo.load_marketplace_states())["fakebay"].circuit
    assert (again.state, again.openings) == (CircuitState.OPEN, 2)
    assert again.open_until is not None and again.open_until >= clock() + timedelta(minutes=20)
    clock.advance(minutes=6)
    await boss.run_until_idle()
    assert len(queue.sent) == 4  # still waiting out the longer wait


@pytest.mark.parametrize(("kind", "circuit"), [(Spent, "fakebay"), (SpentFeeds, "fakebay:feeds.example")],
                         ids=["marketplace", "feed host"])
async def test_a_probe_put_off_by_the_request_budget_keeps_its_circuit_held_until_it_runs(
    repo: Repository, clock: ManualClock, tasks: ScanTasks, kind: type[Spent], circuit: str,
) -> None:
    """A worker that must wait for the shared request budget puts the probe off past its hold: no second probe goes
    out meanwhile, and the probe is sent again once it is due. So too on a circuit kept per feed host."""
    market = kind(wait=1500.0)
    boss, runner, queue = await opened_circuit(repo, market, clock, tasks, "lego", "duplo", circuit=circuit)
    clock.advance(minutes=11)
    await boss.run_until_idle()
    assert len(queue.sent) == 3
    probe = queue.sent[-1]
    market.denied = 1
    assert (await runner.run(probe)).status == "deferred"  # due again in 25 minutes, past the 20-minute hold
    clock.advance(minutes=21)
    await boss.run_until_idle()
    assert len(queue.sent) == 3  # the probe is put off, not lost: no second one
    clock.advance(minutes=5)
    await boss.run_until_idle()
    assert queue.sent[3:] == [probe]  # sent again when due, still the only probe
    market.results["lego"] = market.results["duplo"] = ScrapeResult.of([make_listing(1, "Lego castle")])
    assert (await runner.run(probe)).status == "done"
    assert (await repo.load_marketplace_states())[circuit].circuit.state is CircuitState.CLOSED


async def test_an_operator_resume_sends_a_probe_at_once_while_one_is_out(
    repo: Repository, market: TableAdapter, clock: ManualClock, tasks: ScanTasks,
) -> None:
    boss, runner, queue = await opened_circuit(repo, market, clock, tasks, "lego", "duplo")
    clock.advance(minutes=11)
    await boss.run_until_idle()  # the probe goes out and waits on the queue
    assert len(queue.sent) == 3
    await repo.set_marketplace_status("fakebay", status="active", reason=None, actor="op", now=clock())
    clock.advance(minutes=5, seconds=1)
    await boss.run_until_idle()
    assert len(queue.sent) == 4  # the operator asked for a try now
