"""Telegram delivery: alerts and digests as Bot API sends, paced under Telegram's flood limits, failures as values."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import warnings
from collections.abc import Awaitable, Callable, Hashable, Iterator, Mapping
from dataclasses import replace
from datetime import timedelta

import msgspec
from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    LinkPreviewOptions,
    Message,
    ReplyParameters,
)
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.warnings import PTBDeprecationWarning

from bot.telegram.render import Keyboard, render_alert, render_digest
from scout.delivery import DeliveryResult
from scout.models import Alert, Destination, Notice
from scout.pacing import Pacer, Rate

log = logging.getLogger(__name__)

# Telegram's published limits (https://core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this):
# about one message per second in a chat, 20 per minute in a group, about 30 per second in all.
CHAT_LIMIT = Rate(1, 1.0)
GROUP_LIMIT = Rate(20, 60.0)
OVERALL_LIMIT = Rate(30, 1.0)
# Sends are spaced this much wider than the limits: Telegram counts at arrival, and arrivals jitter.
SAFETY_MARGIN = 0.1
# More alerts than can go out one by one within this long are folded into digests.
SOON_SECONDS = 30.0
DIGEST_SIZE = 15
# A timed-out send may have been delivered: resend only after this long, never in a tight loop.
TIMED_OUT_COOLDOWN = 60.0
# 5xx and network errors: 5 s doubling to 5 min. The dispatcher's own jittered backoff can spend all of an
# alert's attempts inside a few minutes; these waits add up to over 10 minutes before the 8th attempt.
OUTAGE_BACKOFF = 5.0
OUTAGE_BACKOFF_MAX = 300.0
# While the front end is not connected yet (the scheduler starts first), come back after this long.
NOT_CONNECTED_WAIT = 5.0
# A command reply that flood control turns away is sent again after the wait Telegram gives, this many sends in all:
# a person is waiting for it, but a chat Telegram keeps refusing should not hold its updates forever.
REPLY_ATTEMPTS = 3
# Bad requests from sendPhoto that mean "the image", not "the chat": the alert goes out as text instead.
_PHOTO_PROBLEMS = ("wrong file identifier", "http url", "web page content", "image_process_failed", "photo",
                   "failed to get")
_GONE_PROBLEMS = ("chat not found", "not enough rights", "have no rights", "chat_write_forbidden",
                  "peer_id_invalid", "need administrator rights", "user not found", "bot is not a member")


def is_group(chat_id: int) -> bool:
    """Groups, supergroups and channels have negative ids; private chats have the user's (positive) id."""
    return chat_id < 0


def retry_after_seconds(error: RetryAfter) -> float:
    # PTB 22 warns that retry_after becomes a timedelta; read it either way without the warning.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = error.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def to_markup(keyboard: Keyboard) -> InlineKeyboardMarkup | None:
    if not keyboard:
        return None
    return InlineKeyboardMarkup([
        [InlineKeyboardButton(b.text, url=b.url) if b.url else InlineKeyboardButton(b.text, callback_data=b.data)
         for b in row]
        for row in keyboard
    ])


class ReplyQueue:
    """Command replies waiting to go out, per chat: alerts to a chat hold back while a reply to it waits."""

    def __init__(self) -> None:
        self._waiting: dict[int, int] = {}
        self._none_left: dict[int, asyncio.Event] = {}

    @contextlib.contextmanager
    def waiting(self, chat_id: int) -> Iterator[None]:
        """A reply to this chat waits (or is on its way) while the block runs."""
        self._waiting[chat_id] = self._waiting.get(chat_id, 0) + 1
        self._none_left.setdefault(chat_id, asyncio.Event())
        try:
            yield
        finally:
            self._waiting[chat_id] -= 1
            if not self._waiting[chat_id]:
                del self._waiting[chat_id]
                self._none_left.pop(chat_id).set()

    def any_for(self, chat_id: int) -> bool:
        return chat_id in self._waiting

    async def wait_until_none_for(self, chat_id: int) -> None:
        while (none_left := self._none_left.get(chat_id)) is not None:
            await none_left.wait()


class TelegramNotifier:
    """Sends alerts to Telegram chats. Implements scout.delivery.DigestNotifier."""

    platform = "telegram"

    def __init__(
        self,
        bot: Bot | None = None,
        *,
        per_chat: Rate = CHAT_LIMIT,
        per_group: Rate = GROUP_LIMIT,
        overall: Rate = OVERALL_LIMIT,
        margin: float = SAFETY_MARGIN,
        soon_seconds: float = SOON_SECONDS,
        digest_size: int = DIGEST_SIZE,
        timed_out_cooldown: float = TIMED_OUT_COOLDOWN,
        outage_backoff: float = OUTAGE_BACKOFF,
        outage_backoff_max: float = OUTAGE_BACKOFF_MAX,
        marketplace_names: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self._bot = bot
        self._clock = clock
        self._sleep = sleep
        self.digest_size = digest_size
        self._soon = soon_seconds
        self._timed_out_cooldown = timed_out_cooldown
        self._outage_backoff = outage_backoff
        self._outage_backoff_max = outage_backoff_max
        self._names = dict(marketplace_names or {})
        self._held_until: dict[int, float] = {}  # chat -> when Telegram said we may send there again
        self._replies = ReplyQueue()
        self._limits = (per_chat, per_group, overall)
        self._margin = margin
        self.set_limits()

    def set_limits(self, *, per_chat: Rate | None = None, per_group: Rate | None = None, overall: Rate | None = None,
                   margin: float | None = None) -> None:
        """Change the flood limits (tests and benchmarks scale them down); pacing starts afresh."""
        chat, group, everything = self._limits
        self._limits = (per_chat or chat, per_group or group, overall or everything)
        self._margin = self._margin if margin is None else margin
        # One token at a time, `per/count` apart: then no window of `per` seconds, wherever it starts, holds more
        # than `count` sends (a bucket holding `count` tokens would allow nearly twice that around a burst).
        self._chat_rate, self._group_rate, self._overall_rate = (
            Rate(1, rate.per_seconds / rate.count * (1 + self._margin)) for rate in self._limits
        )
        self._pacer = Pacer(clock=self._clock, sleep=self._sleep)
        self._turn = asyncio.Lock()  # FIFO: sends take the shared limit in the order their chats became ready

    def attach(self, bot: Bot | None) -> None:
        """Send through this bot from now on (the front end attaches its Application's bot once started)."""
        self._bot = bot

    @property
    def bot(self) -> Bot | None:
        return self._bot

    def set_marketplace_names(self, marketplace_names: Mapping[str, str]) -> None:
        self._names = dict(marketplace_names)

    # --- pacing ---------------------------------------------------------------------------------------------

    def _limits_for(self, chat_id: int) -> list[tuple[Hashable, Rate]]:
        limits: list[tuple[Hashable, Rate]] = [(("chat", chat_id), self._chat_rate)]
        if is_group(chat_id):
            limits.append((("group", chat_id), self._group_rate))
        return limits

    async def pace(self, chat_id: int, *, reply: bool = False) -> None:
        """Wait until one more message to this chat keeps every limit; command replies (`reply`) go ahead of
        the alerts waiting for the same chat (send_text registers them in the ReplyQueue)."""
        own = self._limits_for(chat_id)
        while True:
            if not reply:
                await self._replies.wait_until_none_for(chat_id)
            # Wait out this chat's own limits first, outside the queue, so a chat held by them holds up no one else.
            wait = self._chat_wait(chat_id, own)
            if wait > 0:
                await self._sleep(wait)
                continue
            # Then queue for the limit every chat shares. Waiters racing for it (as Pacer.acquire alone has them
            # do) starve some of them for many seconds when the bot runs near 30 messages/s.
            async with self._turn:
                # While this send queued, a reply may have come for its chat, or taken the chat's slot.
                if self._chat_wait(chat_id, own) <= 0 and (reply or not self._replies.any_for(chat_id)):
                    await self._pacer.acquire([*own, (("overall",), self._overall_rate)])
                    return

    def _chat_wait(self, chat_id: int, own: list[tuple[Hashable, Rate]]) -> float:
        """Seconds until this chat may have its next message: Telegram's own wait after a flood answer, or ours."""
        held = self._held_until.get(chat_id)
        now = self._clock()
        if held is not None and held <= now:
            del self._held_until[chat_id]
            held = None
        return max(held - now if held is not None else 0.0, self._pacer.delay(own))

    def wants_digest(self, destination: Destination, waiting: int) -> bool:
        try:
            chat_id = int(destination.target)
        except ValueError:
            return False
        limits = self._limits_for(chat_id)
        spacing = max(rate.per_seconds for _, rate in limits)
        return self._pacer.delay(limits) + (waiting - 1) * spacing > self._soon

    # --- sending --------------------------------------------------------------------------------------------

    async def send_alert(self, destination: Destination, alert: Alert) -> DeliveryResult:
        rendered = render_alert(alert, marketplace_names=self._names)
        markup = to_markup(rendered.keyboard)
        photo_url = rendered.photo_url
        if photo_url:
            result = await self._deliver(destination, alert.attempts, lambda bot, chat: bot.send_photo(
                chat, photo_url, caption=rendered.html, parse_mode=ParseMode.HTML, reply_markup=markup), photo=True)
            if result is not _PHOTO_REFUSED:
                return result
            # The image is the problem, not the chat: send the same alert as text (with the larger text limit).
            rendered = render_alert(replace(alert, listing=msgspec.structs.replace(alert.listing, image_url=None)),
                                    marketplace_names=self._names)
        text = rendered.html
        return await self._deliver(destination, alert.attempts, lambda bot, chat: bot.send_message(
            chat, text, parse_mode=ParseMode.HTML, reply_markup=markup))

    async def send_digest(self, destination: Destination, alerts: list[Alert]) -> DeliveryResult:
        text = render_digest(alerts, marketplace_names=self._names)
        attempts = max(alert.attempts for alert in alerts)
        return await self._deliver(destination, attempts, lambda bot, chat: bot.send_message(
            chat, text, parse_mode=ParseMode.HTML, link_preview_options=LinkPreviewOptions(is_disabled=True)))

    async def send_notice(self, destination: Destination, notice: Notice) -> DeliveryResult:
        text = notice.text  # plain text: ops figures and listing titles need no escaping without a parse mode
        return await self._deliver(destination, notice.attempts, lambda bot, chat: bot.send_message(
            chat, text, link_preview_options=LinkPreviewOptions(is_disabled=True)))

    async def send_text(self, chat_id: int, html_text: str, *, reply_to: int | None = None,
                        reply_markup: object | None = None) -> Message:
        """A paced HTML message for command replies and notices, ahead of the alerts waiting for its chat.

        Flood control's answer is waited out and the message sent again, REPLY_ATTEMPTS sends in all; other
        Telegram errors, and the last flood answer, are raised to the caller.
        """
        reply = ReplyParameters(reply_to, allow_sending_without_reply=True) if reply_to else None
        return await self._send_reply(chat_id, lambda bot: bot.send_message(
            chat_id, html_text, parse_mode=ParseMode.HTML, reply_parameters=reply,
            reply_markup=reply_markup,  # type: ignore[arg-type]
            link_preview_options=LinkPreviewOptions(is_disabled=True)))

    async def send_picture(self, chat_id: int, png: bytes, caption_html: str, *, filename: str,
                           reply_to: int | None = None) -> Message:
        """A command's answer as an uploaded picture (multipart) with an HTML caption, paced and retried as
        send_text. The caller keeps the caption within CAPTION_LIMIT (render.render_caption does)."""
        reply = ReplyParameters(reply_to, allow_sending_without_reply=True) if reply_to else None
        return await self._send_reply(chat_id, lambda bot: bot.send_photo(
            chat_id, InputFile(png, filename=filename), caption=caption_html, parse_mode=ParseMode.HTML,
            reply_parameters=reply))

    async def _send_reply(self, chat_id: int, send: Callable[[Bot], Awaitable[Message]]) -> Message:
        """Send a command reply ahead of the alerts waiting for its chat, waiting out flood control's answer."""
        bot = self._require_bot()
        with self._replies.waiting(chat_id):
            attempt = 1
            while True:
                await self.pace(chat_id, reply=True)
                try:
                    return await send(bot)
                except RetryAfter as err:
                    wait = retry_after_seconds(err)
                    self._held_until[chat_id] = self._clock() + wait
                    if attempt >= REPLY_ATTEMPTS:
                        log.warning("Telegram flood control turned a command reply away %d times; giving it up",
                                    attempt)
                        raise
                    log.info("Telegram flood control for a chat: the command reply goes in %.0f s", wait)
                    attempt += 1

    def _require_bot(self) -> Bot:
        if self._bot is None:
            raise RuntimeError("the Telegram front end is not started")
        return self._bot

    async def _deliver(self, destination: Destination, attempts: int,
                       send: Callable[[Bot, int], Awaitable[Message]], *, photo: bool = False) -> DeliveryResult:
        bot = self._bot
        if bot is None:
            return DeliveryResult.wait("Telegram is not connected yet", NOT_CONNECTED_WAIT)
        try:
            chat_id = int(destination.target)
        except ValueError:
            return DeliveryResult.dead(f"{destination.target[:30]!r} is not a Telegram chat id")
        await self.pace(chat_id)
        try:
            await send(bot, chat_id)
        except RetryAfter as err:
            wait = retry_after_seconds(err)
            self._held_until[chat_id] = self._clock() + wait
            log.warning("Telegram flood control for a chat: retry in %.0f s", wait)
            return DeliveryResult.wait(f"flood control: retry in {wait:.0f} s", wait)
        except ChatMigrated as err:
            return DeliveryResult.moved(str(err.new_chat_id))
        except Forbidden as err:
            return DeliveryResult.gone(f"Telegram refused: {err.message}")
        except TimedOut:
            wait = max(self._timed_out_cooldown, self._outage_wait(attempts))
            return DeliveryResult.retry("timed out; it may have been delivered", retry_after=wait)
        except BadRequest as err:
            text = err.message.lower()
            # First: a chat that takes text but not photos still gets its alerts, as text.
            if photo and any(problem in text for problem in _PHOTO_PROBLEMS):
                log.info("Telegram would not take a listing image (%s); sending the alert as text", err.message)
                return _PHOTO_REFUSED
            if any(problem in text for problem in _GONE_PROBLEMS):
                return DeliveryResult.gone(f"Telegram refused: {err.message}")
            return DeliveryResult.dead(f"Telegram refused the message: {err.message}")
        except InvalidToken:
            log.error("Telegram refuses the bot token; alerts wait until TELEGRAM_TOKEN is fixed")
            return DeliveryResult.retry("Telegram refuses the bot token", retry_after=self._outage_backoff_max)
        except (NetworkError, TelegramError) as err:
            return DeliveryResult.retry(f"Telegram unavailable: {err.message}", retry_after=self._outage_wait(attempts))
        return DeliveryResult.ok()

    def _outage_wait(self, attempts: int) -> float:
        return min(self._outage_backoff_max, self._outage_backoff * math.pow(2, max(0, attempts)))


# A sentinel result: sendPhoto failed because of the image; the caller retries as a text message.
_PHOTO_REFUSED = DeliveryResult(False, "the image was refused")
