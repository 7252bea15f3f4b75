"""Delivery to Discord through the real Dispatcher and the fake API: pacing, 429s, outages, gone channels, digests."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter
from collections.abc import AsyncIterator

import pytest

from bot.discord.frontend import DiscordFrontEnd
from bot.discord.notifier import DiscordLimits, DiscordNotifier
from scout.delivery import DeliveryResult, Dispatcher
from scout.models import Alert, Destination, Notice, NoticeKind, SavedSearch, SearchSpec, SearchStatus
from storage.repo import Repository
from tests.bot.discord.harness import GUILD_ID, OTHER_USER_ID, USER_ID, ClockedRest, VirtualClock, queue_alerts
from tests.fakes.discord_api import FakeDiscord, Posted

FIRST_CHANNEL = 740000000000000001
NO_DIGESTS = DiscordLimits(digest_after_seconds=float("inf"))


def listing_numbers(posted: Posted) -> list[int]:
    return [int(embed["url"].rsplit("/", 1)[1]) for embed in posted.payload["embeds"]]


def delivered(fake: FakeDiscord) -> Counter[int]:
    return Counter(n for posted in fake.messages for n in listing_numbers(posted))


async def search_in(repo: Repository, vclock: VirtualClock, channel: int, owner: int = USER_ID) -> SavedSearch:
    spec = SearchSpec(query="lego", marketplaces=("fakebay",), check_interval_minutes=5)
    return await repo.save_search(owner=str(owner), destination=Destination("discord", str(channel)),
                                  scope=str(GUILD_ID), spec=spec, now=vclock(), first_run_at=vclock())


async def burst(repo: Repository, vclock: VirtualClock, channels: int, per_channel: int) -> dict[int, list[int]]:
    """Queue per_channel alerts for each of `channels` channels; returns channel -> listing numbers in order."""
    queued = {}
    for index in range(channels):
        channel = FIRST_CHANNEL + index
        search = await search_in(repo, vclock, channel)
        start = index * per_channel
        await queue_alerts(repo, search, [f"lego {start + n}" for n in range(per_channel)], start=start, now=vclock())
        queued[channel] = list(range(start, start + per_channel))
    return queued


def notifier_for(vclock: VirtualClock, limits: DiscordLimits | None = None) -> DiscordNotifier:
    return DiscordNotifier(ClockedRest("test-token", vclock), marketplace_names={"fakebay": "FakeBay"}, limits=limits,
                           clock=vclock.monotonic, sleep=vclock.sleep)


def dispatcher_for(repo: Repository, notifier: DiscordNotifier, vclock: VirtualClock,
                   front: DiscordFrontEnd | None = None) -> Dispatcher:
    # The service's defaults (DELIVERY_MAX_ATTEMPTS, DELIVERY_BACKOFF_SECONDS, DELIVERY_BACKOFF_MAX_SECONDS).
    return Dispatcher(repo, {"discord": notifier}, clock=vclock, rng=random.Random(7), max_attempts=8,
                      backoff_seconds=5, backoff_max_seconds=900,
                      on_destination_gone=front.destination_gone if front else None)


async def drain_all(repo: Repository, dispatcher: Dispatcher, vclock: VirtualClock, *, step: float = 1.0,
                    rounds: int = 5000) -> None:
    """Run the dispatcher as the scheduler would, moving virtual time on when nothing is due yet."""
    for _ in range(rounds):
        if (await repo.outbox_summary()).pending == 0:
            return
        report = await dispatcher.drain()
        if report.sent == 0:
            vclock.advance(step)
    raise AssertionError("the outbox never drained")


@pytest.fixture
async def notifier(fake: FakeDiscord, vclock: VirtualClock) -> AsyncIterator[DiscordNotifier]:
    made = notifier_for(vclock)
    yield made
    await made.close()


@pytest.mark.parametrize("limits", [DiscordLimits(), NO_DIGESTS], ids=["with-digests", "one-per-message"])
async def test_a_burst_of_500_alerts_to_20_channels_meets_no_429(repo: Repository, fake: FakeDiscord,
                                                                   vclock: VirtualClock, limits: DiscordLimits) -> None:
    queued = await burst(repo, vclock, channels=20, per_channel=25)
    notifier = notifier_for(vclock, limits)
    try:
        await drain_all(repo, dispatcher_for(repo, notifier, vclock), vclock)
    finally:
        await notifier.close()
    assert fake.rate_limited == []
    assert fake.statuses.keys() == {200}
    counts = delivered(fake)
    assert sorted(counts) == list(range(500)) and set(counts.values()) == {1}
    for channel, numbers in queued.items():
        in_order = [n for posted in fake.messages_in(channel) for n in listing_numbers(posted)]
        assert in_order == numbers
    assert all(p.payload["allowed_mentions"] == {"parse": []} and p.payload["nonce"] for p in fake.messages)
    if limits is NO_DIGESTS:
        assert len(fake.messages) == 500
        # 25 messages a channel at 5 per 5 s: the last window opens 20 s after the first.
        assert vclock.elapsed >= 20
    else:
        assert len(fake.messages) < 100 and max(len(p.payload["embeds"]) for p in fake.messages) == 10


async def test_the_global_limit_is_paced_too(repo: Repository, vclock: VirtualClock) -> None:
    async with FakeDiscord(clock=vclock.monotonic, global_limit=10, global_window=1.0) as fake:
        await burst(repo, vclock, channels=20, per_channel=5)
        # At most 10 in any 1.05 s: no one-second span can see more than the fake's 10.
        notifier = notifier_for(vclock, DiscordLimits(global_requests=10, global_window_seconds=1.05,
                                                      digest_after_seconds=float("inf")))
        try:
            await drain_all(repo, dispatcher_for(repo, notifier, vclock), vclock)
        finally:
            await notifier.close()
        assert fake.rate_limited == [] and len(fake.messages) == 100
        assert vclock.elapsed >= (100 / 10 - 1) * 1.05 - 1e-6  # nine full windows between ten bursts


async def test_a_429_is_honoured_to_the_letter(repo: Repository, fake: FakeDiscord, vclock: VirtualClock,
                                               notifier: DiscordNotifier) -> None:
    """Another process used up the channel's window: the alert waits exactly retry_after, then goes once."""
    queued = await burst(repo, vclock, channels=1, per_channel=3)
    fake.channel_window = 30.0
    fake.exhaust(FIRST_CHANNEL)
    dispatcher = dispatcher_for(repo, notifier, vclock)
    assert (await dispatcher.drain()).sent == 0
    assert fake.rate_limited == [("user", f"/channels/{FIRST_CHANNEL}/messages")]
    vclock.advance(29.9)
    assert (await dispatcher.drain()).sent == 0, "not before retry_after"
    assert len(fake.rate_limited) == 1, "and without asking again"
    vclock.advance(0.2)
    await drain_all(repo, dispatcher, vclock)
    assert [n for p in fake.messages for n in listing_numbers(p)] == queued[FIRST_CHANNEL]


async def test_a_five_minute_outage_loses_and_duplicates_nothing(repo: Repository, fake: FakeDiscord,
                                                                 vclock: VirtualClock,
                                                                 notifier: DiscordNotifier) -> None:
    await burst(repo, vclock, channels=3, per_channel=10)
    fake.outage(until=vclock.monotonic() + 300, status=503)
    fake.lose_responses(1)  # when Discord comes back, the first message is made but its answer is lost
    await drain_all(repo, dispatcher_for(repo, notifier, vclock), vclock, step=5.0)
    assert vclock.elapsed >= 300
    assert fake.statuses[503] >= 3 and fake.statuses[502] == 1
    counts = delivered(fake)
    assert sorted(counts) == list(range(30)) and set(counts.values()) == {1}
    assert fake.nonce_repeats == 1, "the resend of the lost answer carried the same nonce and was dropped"
    summary = await repo.outbox_summary()
    assert (summary.sent, summary.dead, summary.pending) == (30, 0, 0)
    assert fake.rate_limited == []


async def test_a_429_storm_of_16_seconds_kills_no_alert(repo: Repository, fake: FakeDiscord, vclock: VirtualClock,
                                                         notifier: DiscordNotifier) -> None:
    """Regression: a channel answering 429 for about 16 s marked its alerts dead ("gave up after 8 attempts: 429
    rate limited"): a rate limit is a wait, not a failed attempt."""
    queued = await burst(repo, vclock, channels=1, per_channel=2)
    fake.channel_window = 2.0
    dispatcher = dispatcher_for(repo, notifier, vclock)
    for _ in range(9):  # someone else keeps using up the channel's window for 18 s
        fake.exhaust(FIRST_CHANNEL)
        assert (await dispatcher.drain()).sent == 0
        vclock.advance(2.0)
    assert len(fake.rate_limited) == 9
    await drain_all(repo, dispatcher, vclock)
    assert [n for p in fake.messages for n in listing_numbers(p)] == queued[FIRST_CHANNEL]
    summary = await repo.outbox_summary()
    assert (summary.sent, summary.dead) == (2, 0)


async def test_a_404_that_is_not_discords_unknown_channel_is_retried(repo: Repository, fake: FakeDiscord,
                                                                      vclock: VirtualClock,
                                                                      notifier: DiscordNotifier) -> None:
    """Regression: any 404 (a proxy's error page) was taken for a deleted channel: its searches were paused and
    its alerts dropped. Only Discord's own Unknown Channel answer (code 10003) means that."""
    search = await search_in(repo, vclock, FIRST_CHANNEL)
    await queue_alerts(repo, search, ["a", "b"], now=vclock())
    fake.outage(until=vclock.monotonic() + 30, status=404)
    assert (await dispatcher_for(repo, notifier, vclock).drain()).retried == 1
    assert (await repo.load_search(search.id)).status is SearchStatus.ACTIVE  # type: ignore[union-attr]
    await drain_all(repo, dispatcher_for(repo, notifier, vclock), vclock, step=5.0)
    assert sorted(delivered(fake)) == [0, 1]


async def test_a_digest_cut_short_goes_out_again_as_the_same_message(repo: Repository, fake: FakeDiscord,
                                                                      vclock: VirtualClock) -> None:
    """Regression: after a kill during the second digest of 16 alerts, its alerts were resent as singles with new
    nonces (6 duplicates). The claimed grouping survives the restart, so the resend carries the same nonce and
    Discord answers with the message it already made."""
    queued = await burst(repo, vclock, channels=1, per_channel=16)
    fake.hold_answers(from_message=1)
    before = notifier_for(vclock)
    sending = asyncio.create_task(dispatcher_for(repo, before, vclock).drain())
    await fake.wait_for(lambda: len(fake.messages) == 2)
    sending.cancel()  # the process dies: the second digest is in Discord, its answer never arrived
    with contextlib.suppress(asyncio.CancelledError):
        await sending
    await before.close()
    fake.release_answers()

    after = notifier_for(vclock)  # a new process, with none of the old one's memory
    try:
        restarted = dispatcher_for(repo, after, vclock)
        assert await restarted.recover() == 6
        await drain_all(repo, restarted, vclock)
    finally:
        await after.close()
    assert fake.nonce_repeats == 1
    counts = delivered(fake)
    assert sorted(counts) == queued[FIRST_CHANNEL] and set(counts.values()) == {1}
    assert [len(p.payload["embeds"]) for p in fake.messages] == [10, 6]


@pytest.mark.parametrize(("gone", "words"), [("delete_channel", "Unknown Channel"), ("revoke", "Missing Access")])
async def test_a_gone_channel_pauses_its_searches_and_the_owner_hears(
        repo: Repository, fake: FakeDiscord, vclock: VirtualClock, front: DiscordFrontEnd, gone: str,
        words: str) -> None:
    dead_channel, live_channel = FIRST_CHANNEL, FIRST_CHANNEL + 1
    dead_search = await search_in(repo, vclock, dead_channel)
    other_owner = await search_in(repo, vclock, dead_channel, owner=OTHER_USER_ID)
    await queue_alerts(repo, dead_search, ["a", "b", "c"], now=vclock())
    live = await search_in(repo, vclock, live_channel)
    await queue_alerts(repo, live, [f"live {n}" for n in range(4)], start=10, now=vclock())
    getattr(fake, gone)(dead_channel)
    report = await dispatcher_for(repo, front.notifier, vclock, front).drain()
    # One dead channel never delays the others: the live channel got everything in the same pass.
    assert sorted(delivered(fake)) == [10, 11, 12, 13] and report.sent == 4
    for search in (dead_search, other_owner):
        paused = await repo.load_search(search.id)
        assert paused is not None and paused.status is SearchStatus.PAUSED and words in (paused.paused_reason or "")
    assert (await repo.outbox_summary()).pending == 0
    assert set(fake.dms) == {str(USER_ID), str(OTHER_USER_ID)}
    [dm] = fake.messages_in(fake.dms[str(USER_ID)])
    assert f"paused your search #{dead_search.id}" in dm.payload["content"] and words in dm.payload["content"]
    assert dm.payload["allowed_mentions"] == {"parse": []}
    assert (await dispatcher_for(repo, front.notifier, vclock, front).drain()).sent == 0
    assert len(fake.messages_in(dead_channel)) == 0


async def test_results_for_each_kind_of_answer(fake: FakeDiscord, vclock: VirtualClock,
                                               notifier: DiscordNotifier, repo: Repository) -> None:
    search = await search_in(repo, vclock, FIRST_CHANNEL)
    await queue_alerts(repo, search, ["x"], now=vclock())
    [alert] = await repo.load_due_deliveries(now=vclock(), limit=1, platforms=["discord"])
    fake.outage(until=vclock.monotonic() + 0.5, status=502)
    assert await notifier.send_alert(alert.destination, alert) == DeliveryResult.ok(), "one quick retry"
    assert fake.statuses[502] == 1
    fake.outage(until=vclock.monotonic() + 60, status=500)
    result = await notifier.send_alert(alert.destination, alert)
    assert not result.delivered and not result.permanent and result.retry_after == 5.0
    assert fake.statuses[500] == 2, "tried twice, then left to the dispatcher"
    later = Alert(alert.outbox_id, alert.destination, alert.listing, alert.search_id, alert.search_query, attempts=3)
    assert (await notifier.send_alert(alert.destination, later)).retry_after == 40.0
    not_a_channel = await notifier.send_alert(Destination("discord", "general"), alert)
    assert not_a_channel.permanent and not not_a_channel.destination_gone


async def test_digests_start_when_a_channel_would_fall_behind(notifier: DiscordNotifier) -> None:
    here = Destination("discord", str(FIRST_CHANNEL))
    # 5 at once, then 5 more every 5 s: 15 fit within 10 s, the 16th would trail.
    assert not notifier.wants_digest(here, 15)
    assert notifier.wants_digest(here, 16)
    assert notifier.digest_size == 10


async def test_ops_messages_are_plain_text_with_their_rows_nonce(fake: FakeDiscord, notifier: DiscordNotifier) -> None:
    ops = Destination("discord", str(FIRST_CHANNEL))
    notice = Notice(41, ops, "eBay blocked: **captcha** @everyone", kind=NoticeKind.OPS)
    assert (await notifier.send_notice(ops, notice)).delivered
    [posted] = fake.messages_in(FIRST_CHANNEL)
    assert posted.payload["content"] == "eBay blocked: \\*\\*captcha\\*\\* @\u200beveryone"
    assert (posted.nonce, posted.payload["allowed_mentions"]) == ("ds41", {"parse": []})
