"""The kill drill's instruments, checked fast: the fakes hold answers and report arrivals on cue, the arrivals find
every listing in what the real renderers produce, the ledger allows a repeat only where a kill left one, and the
launcher refuses a bad host map."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections import Counter
from pathlib import Path

import aiohttp

from bot.discord.render import render_alert_message, render_digest_message
from bot.telegram.render import render_alert, render_digest
from scout.models import Alert, Destination
from tests.drills.process import LAUNCHER, REPO_ROOT, service_environment
from tests.drills.service_process import RESOLVE_ENV
from tests.drills.world import Arrivals, Ledger, Pair, Tally
from tests.fakes.adapters import make_listing
from tests.fakes.discord_api import API_PREFIX, FakeDiscord, Posted
from tests.fakes.marketplace import FakeMarketplace
from tests.fakes.telegram_api import TOKEN, ApiCall, FakeBotApi

CHANNEL = Destination("discord", "710000000000000011")
CHAT = Destination("telegram", "4242001")


def alert(n: int, destination: Destination) -> Alert:
    return Alert(outbox_id=n, destination=destination, listing=make_listing(n, f"Cordless drill no {n}"),
                 search_id=1, search_query="drill")


async def test_discord_creates_a_held_message_and_answers_it_on_release() -> None:
    async with FakeDiscord() as fake, aiohttp.ClientSession() as http:
        url = f"{fake.url}{API_PREFIX}/channels/{CHANNEL.target}/messages"
        fake.hold_answers(from_message=1)
        first = await http.post(url, json={"content": "one"})
        assert first.status == 200
        second = asyncio.ensure_future(http.post(url, json={"content": "two"}))
        await fake.wait_for(lambda: len(fake.messages) == 2)
        assert not second.done(), "the second message exists, its answer waits"
        fake.release_answers()
        assert (await second).status == 200


async def test_telegram_accepts_a_held_send_and_answers_it_on_release() -> None:
    async with FakeBotApi() as api, aiohttp.ClientSession() as http:
        url = f"{api.base_url}{TOKEN}/sendMessage"
        api.hold_answers(from_send=0)
        send = asyncio.ensure_future(http.post(url, json={"chat_id": 4242001, "text": "hi"}))
        await api.wait_for(lambda: len(api.sent) == 1)
        assert not send.done(), "the chat has the message, the answer waits"
        api.release_answers()
        assert (await send).status == 200


async def test_the_marketplace_reports_a_request_whose_answer_it_holds() -> None:
    async with FakeMarketplace() as market, aiohttp.ClientSession() as http:
        release = market.hold("/sch/i.html", "<html></html>")
        fetch = asyncio.ensure_future(http.get(market.url + "/sch/i.html?_nkw=drill"))
        request = await market.wait_for_requests("/sch/i.html")
        assert request.query["_nkw"] == "drill"
        assert not fetch.done()
        release.set()
        assert (await fetch).status == 200


def test_arrivals_find_each_listing_in_rendered_alerts_and_digests() -> None:
    discord, telegram = FakeDiscord(), FakeBotApi()
    discord.messages += [
        Posted(CHANNEL.target, render_digest_message([alert(1, CHANNEL), alert(2, CHANNEL)], marketplace_names={}),
               {}),
        Posted(CHANNEL.target, render_alert_message(alert(3, CHANNEL), marketplace_names={}), {}),
    ]
    single = render_alert(alert(3, CHAT))
    telegram.sent += [
        ApiCall("sendMessage", {"chat_id": 4242001, "text": render_digest([alert(1, CHAT), alert(2, CHAT)])}, 0.0),
        ApiCall("sendPhoto", {"chat_id": 4242001, "caption": single.html}, 0.0),
        ApiCall("sendChatAction", {"chat_id": 4242001}, 0.0),
    ]
    arrivals = Arrivals(discord, telegram)
    assert arrivals.update() == Counter({(CHANNEL, "1"): 1, (CHANNEL, "2"): 1, (CHANNEL, "3"): 1,
                                         (CHAT, "1"): 1, (CHAT, "2"): 1, (CHAT, "3"): 1})
    assert arrivals.digests == Counter({"discord": 1, "telegram": 1})


def test_a_repeat_is_allowed_once_per_kill_that_left_its_delivery_unrecorded() -> None:
    resent: Pair = (CHAT, "1")
    lingering: Pair = (CHAT, "2")
    ledger = Ledger()
    ledger.note_kill(Counter({resent: 1, lingering: 1}), unrecorded={resent, lingering})
    # The next life resends one of them and dies again before recording it; the other it has not reached yet.
    ledger.note_kill(Counter({resent: 2, lingering: 1}), unrecorded={resent, lingering})
    assert ledger.at_risk == Counter({resent: 2, lingering: 1})
    assert ledger.kills_with_risk == Counter({"telegram": 2})

    within = Tally.count({resent, lingering}, Counter({resent: 3, lingering: 2}), ledger)
    assert within.duplicated == {"discord": 0, "telegram": 3}
    assert within.beyond_risk == []
    beyond = Tally.count({resent, lingering}, Counter({resent: 3, lingering: 3}), ledger)
    assert beyond.beyond_risk == [lingering]


def test_the_tally_names_lost_and_unexpected_alerts() -> None:
    expected: set[Pair] = {(CHANNEL, "1"), (CHAT, "1")}
    tally = Tally.count(expected, Counter({(CHANNEL, "1"): 2, (CHAT, "9"): 1}), Ledger())
    assert tally.lost == [(CHAT, "1")]
    assert tally.unexpected == [(CHAT, "9")]
    assert tally.duplicated == {"discord": 1, "telegram": 0}
    assert tally.beyond_risk == [(CHANNEL, "1")]


def test_the_launcher_refuses_a_host_map_that_is_not_a_json_object(tmp_path: Path) -> None:
    env = service_environment({"DEALSCOUT_DATA_DIR": str(tmp_path), RESOLVE_ENV: '["www.ebay.com"]'})
    done = subprocess.run([sys.executable, "-m", LAUNCHER], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 2
    assert f"{RESOLVE_ENV} must be a JSON object" in done.stderr
    assert not any(tmp_path.iterdir()), "nothing was started or created"
