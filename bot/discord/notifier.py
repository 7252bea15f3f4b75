"""Delivery to Discord: alerts and digests as channel messages, paced per channel and globally, failures as values."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from bot.discord.client import DiscordRest, RestResponse
from bot.discord.render import (
    EMBEDS_PER_MESSAGE,
    render_alert_message,
    render_digest_message,
    render_notice_message,
    render_outbox_notice,
)
from scout.delivery import DeliveryResult
from scout.models import Alert, Destination, Notice
from scout.pacing import Pacer, Rate, SlidingWindow

log = logging.getLogger(__name__)

# Rate-limit headers carry milliseconds; rounding could put the next request a hair before the window resets.
RESET_MARGIN_SECONDS = 0.005
# https://discord.com/developers/docs/topics/opcodes-and-status-codes#json: 10003 Unknown Channel, the one 404 that
# means the channel is gone.
UNKNOWN_CHANNEL = 10003
# A 5xx or a dropped connection is tried once more, this soon and with the same nonce, before it counts as a
# failed attempt: an answer lost on the way back then costs nothing, and Discord drops the repeat.
QUICK_RETRY_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class DiscordLimits:
    """How fast we send. The defaults are Discord's own; tests pass small windows or drive a fake clock."""

    # POST /channels/{id}/messages answers X-RateLimit-Limit: 5 with X-RateLimit-Reset-After: 5 (observed;
    # https://discord.com/developers/docs/topics/rate-limits says to read the headers, which we also do).
    channel_messages: int = 5
    channel_window_seconds: float = 5.0
    # "All bots can make up to 50 requests per second" (rate-limits#global-rate-limit), counted where Discord
    # receives them: 50 in any window, counted by when answers came (see scout.pacing.SlidingWindow), with 50 ms
    # to spare for clock granularity.
    global_requests: int = 50
    global_window_seconds: float = 1.05
    # More alerts waiting for one channel than it lets through within this long go out as digests instead.
    digest_after_seconds: float = 10.0
    # After a 5xx (tried twice), the alert waits base * 2^attempts, up to the cap: the service's 8 attempts
    # then span over 10 minutes, so a 5-minute outage loses nothing (the dispatcher's own jittered backoff
    # could give up within a minute).
    outage_backoff_seconds: float = 5.0
    outage_backoff_max_seconds: float = 900.0


@dataclass
class _Channel:
    lock: asyncio.Lock
    remaining: int | None = None  # from X-RateLimit-Remaining of the last answer
    reset_at: float = 0.0  # our clock's time when that window ends


class DiscordNotifier:
    """Implements scout.delivery.DigestNotifier for Discord channels (the destination target is a channel id)."""

    platform = "discord"
    digest_size = EMBEDS_PER_MESSAGE

    def __init__(self, rest: DiscordRest, *, marketplace_names: Mapping[str, str] | None = None,
                 limits: DiscordLimits | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[object]] = asyncio.sleep) -> None:
        self._rest = rest
        self._names = dict(marketplace_names or {})
        self.limits = limits or DiscordLimits()
        self._clock = clock
        self._sleep = sleep
        self._channel_pacer = Pacer(clock=clock, sleep=sleep)
        self._global_window = SlidingWindow(self.limits.global_requests, self.limits.global_window_seconds,
                                            clock=clock, sleep=sleep)
        # Channels take global turns one at a time, first come first served: no herd wakes for every token.
        self._global_turn = asyncio.Lock()
        self._channel_rate = Rate(self.limits.channel_messages, self.limits.channel_window_seconds)
        self._channels: dict[str, _Channel] = {}
        self._global_hold_until = 0.0
        self._dm_channels: dict[int, str] = {}

    # --- the DigestNotifier protocol ------------------------------------------------------------------------------

    def wants_digest(self, destination: Destination, waiting: int) -> bool:
        """True when sending `waiting` alerts one by one would take this channel longer than digest_after_seconds."""
        return self._trail_seconds(destination.target, waiting) > self.limits.digest_after_seconds

    async def send_alert(self, destination: Destination, alert: Alert) -> DeliveryResult:
        payload = render_alert_message(alert, marketplace_names=self._names)
        return await self._deliver(destination, payload, attempts=alert.attempts)

    async def send_digest(self, destination: Destination, alerts: list[Alert]) -> DeliveryResult:
        if len(alerts) > self.digest_size:
            return DeliveryResult.dead(f"a digest holds at most {self.digest_size} alerts, got {len(alerts)}")
        payload = render_digest_message(alerts, marketplace_names=self._names)
        return await self._deliver(destination, payload, attempts=max(a.attempts for a in alerts))

    async def send_notice(self, destination: Destination, notice: Notice) -> DeliveryResult:
        return await self._deliver(destination, render_outbox_notice(notice), attempts=notice.attempts)

    # --- direct messages (owners of searches whose channel is gone) -----------------------------------------------

    async def send_direct(self, user_id: int, text: str) -> DeliveryResult:
        """DM a user; best effort (they may share no server with the bot any more, or have DMs closed)."""
        channel = self._dm_channels.get(user_id)
        if channel is None:
            async with self._global_turn:
                await self._global_window.acquire()
            try:
                response = await self._rest.request("POST", "/users/@me/channels",
                                                    payload={"recipient_id": str(user_id)})
            except (TimeoutError, aiohttp.ClientError, OSError) as err:
                return DeliveryResult.retry(f"connection failed: {type(err).__name__}")
            finally:
                self._global_window.release()
            if response.status != 200 or not isinstance(response.data, dict):
                return DeliveryResult.dead(f"cannot open a DM: HTTP {response.status} {response.error_message}")
            channel = self._dm_channels[user_id] = str(response.data["id"])
        return await self._deliver(Destination(self.platform, channel), render_notice_message(text), attempts=0)

    async def close(self) -> None:
        await self._rest.close()

    # --- sending -------------------------------------------------------------------------------------------------

    def _channel(self, target: str) -> _Channel:
        state = self._channels.get(target)
        if state is None:
            state = self._channels[target] = _Channel(asyncio.Lock())
        return state

    def _trail_seconds(self, target: str, waiting: int) -> float:
        """How long until the last of `waiting` one-by-one messages could go, under this channel's window."""
        state = self._channels.get(target)
        limit = self.limits.channel_messages
        now = self._clock()
        if state is None or state.remaining is None or now >= state.reset_at:
            remaining, until_reset = limit, self.limits.channel_window_seconds
        else:
            remaining, until_reset = state.remaining, state.reset_at - now
        if waiting <= remaining:
            return 0.0
        windows = math.ceil((waiting - remaining) / limit)
        return until_reset + (windows - 1) * self.limits.channel_window_seconds

    async def _deliver(self, destination: Destination, payload: dict[str, Any], *, attempts: int) -> DeliveryResult:
        target = destination.target
        if not target.isdigit():
            return DeliveryResult.dead(f"{target[:30]!r} is not a Discord channel id")
        state = self._channel(target)
        # One message at a time per channel: the rate-limit headers of one answer govern the next request.
        async with state.lock:
            for last_try in (False, True):
                await self._wait_for_turn(target, state)
                response = await self._post(target, payload)
                if response is not None:
                    self._note_limits(state, response)
                if last_try or not _transient(response):
                    return self._result(state, response, attempts)
                await self._sleep(QUICK_RETRY_SECONDS)
        raise AssertionError("unreachable")

    async def _post(self, target: str, payload: dict[str, Any]) -> RestResponse | None:
        """The answer, or None when none came (connection refused or dropped, timeout)."""
        try:
            return await self._rest.request("POST", f"/channels/{target}/messages", payload=payload)
        except (TimeoutError, aiohttp.ClientError, OSError) as err:
            log.info("no answer from Discord: %s", type(err).__name__)
            return None
        finally:
            self._global_window.release()

    async def _wait_for_turn(self, target: str, state: _Channel) -> None:
        await self._hold(lambda: state.reset_at + RESET_MARGIN_SECONDS
                         if state.remaining is not None and state.remaining <= 0 else 0.0)
        await self._channel_pacer.acquire([(("channel", target), self._channel_rate)])
        async with self._global_turn:
            await self._hold(lambda: self._global_hold_until)
            await self._global_window.acquire()

    async def _hold(self, until: Callable[[], float]) -> None:
        """Sleep until the time `until` names (it may move while we sleep: a 429 elsewhere)."""
        while (wait := until() - self._clock()) > 0:
            await self._sleep(wait)

    def _note_limits(self, state: _Channel, response: RestResponse) -> None:
        headers = response.headers
        remaining, reset_after = headers.get("X-RateLimit-Remaining"), headers.get("X-RateLimit-Reset-After")
        if remaining is None or reset_after is None:
            return
        try:
            state.remaining, state.reset_at = int(remaining), self._clock() + float(reset_after)
        except ValueError:
            log.debug("unreadable rate-limit headers from Discord: %r %r", remaining, reset_after)

    def _outage_wait(self, attempts: int, hinted: float | None) -> float:
        wait = min(self.limits.outage_backoff_max_seconds, self.limits.outage_backoff_seconds * 2 ** max(0, attempts))
        return max(wait, hinted or 0.0)

    def _result(self, state: _Channel, response: RestResponse | None, attempts: int) -> DeliveryResult:
        if response is None:
            return DeliveryResult.retry("no answer from Discord", retry_after=self._outage_wait(attempts, None))
        status = response.status
        if 200 <= status < 300:
            return DeliveryResult.ok()
        if status == 429:
            retry_after = _retry_after(response)
            now = self._clock()
            if response.headers.get("X-RateLimit-Global") == "true" or (
                    isinstance(response.data, dict) and response.data.get("global")):
                self._global_hold_until = max(self._global_hold_until, now + retry_after)
            else:
                state.remaining, state.reset_at = 0, max(state.reset_at, now + retry_after)
            log.warning("Discord rate limit hit (%s scope), retrying in %.2f s",
                        response.headers.get("X-RateLimit-Scope", "unknown"), retry_after)
            return DeliveryResult.wait(f"429 rate limited: {response.error_message}", retry_after)
        if status == 403 or (status == 404 and response.error_code == UNKNOWN_CHANNEL):
            # 403 Missing Access / Missing Permissions, or the channel was deleted: nothing we send gets there.
            what = "the channel was deleted" if status == 404 else "the bot lost access"
            return DeliveryResult.gone(f"{what} ({status} {response.error_message or 'no message'}, "
                                       f"code {response.error_code})")
        if status == 404:
            # Not Discord's own answer (a proxy's or a load balancer's page): the channel may well be there.
            return DeliveryResult.retry(f"Discord answered HTTP 404 without an error code ({response.error_message})",
                                        retry_after=self._outage_wait(attempts, None))
        if status >= 500 or status == 408:
            hinted = _float(response.headers.get("Retry-After"))
            return DeliveryResult.retry(f"Discord answered HTTP {status}",
                                        retry_after=self._outage_wait(attempts, hinted))
        if status == 401:
            return DeliveryResult.retry("Discord refused the bot token (401); check DISCORD_TOKEN")
        return DeliveryResult.dead(f"Discord refused the message: HTTP {status} {response.error_message}")


def _transient(response: RestResponse | None) -> bool:
    return response is None or response.status >= 500 or response.status == 408


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def _retry_after(response: RestResponse) -> float:
    """Seconds to wait after a 429: the body's retry_after (precise), else the Retry-After header, else 1."""
    if isinstance(response.data, dict):
        value = _float(str(response.data.get("retry_after"))) if "retry_after" in response.data else None
        if value is not None:
            return max(0.0, value)
    return max(0.0, _float(response.headers.get("Retry-After")) or 1.0)
