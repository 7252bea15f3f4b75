"""The Telegram commands of the deal features: /snooze a search, /quiet hours and the alert /layout of a chat, and
/history as a chart. Each is a bot.commands (or bot.history) call and one reply, as in bot.telegram.handlers."""

from __future__ import annotations

import html
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from telegram import Update
from telegram.constants import ChatType
from telegram.error import BadRequest
from telegram.ext import ContextTypes

from bot.history import History, load_history
from bot.telegram.grammar import parse_quiet_line
from bot.telegram.guided import command_args
from bot.telegram.render import CAPTION_LIMIT, render_plain
from scout.errors import InputError, PermissionDeniedError
from scout.models import Destination, Layout
from storage.repo import DestinationSettings

if TYPE_CHECKING:
    from bot.telegram.handlers import Reply, TelegramHandlers

    Callback = Callable[[Update, ContextTypes.DEFAULT_TYPE], Awaitable[None]]

log = logging.getLogger(__name__)

CHART_FILENAME = "history.png"
# What drawing a chart can fail with: an amount matplotlib cannot place (ValueError, OverflowError), a font or
# cache folder it cannot read or write (OSError), matplotlib missing or broken (ImportError, RuntimeError). The
# answer is then the history's text alone, which says the same in fewer pixels.
CHART_FAILURES = (ValueError, ArithmeticError, OSError, ImportError, RuntimeError)
NOT_ADMIN = "Only a group admin can change how alerts come to this chat."
LAYOUT_WORDS = {Layout.FULL: "a card each, with picture, details and buttons",
                Layout.COMPACT: "one line each, without picture or buttons"}


class DealHandlers:
    """/snooze, /quiet, /layout and /history; the plumbing (guard, rights, replies) is TelegramHandlers'."""

    def __init__(self, handlers: TelegramHandlers) -> None:
        self.h = handlers
        self.commands = handlers.commands

    def callbacks(self) -> dict[str, Callback]:
        """The commands by name, for TelegramHandlers.install to register beside its own."""
        return {"snooze": self.h.guard(self.snooze), "quiet": self.h.guard(self.quiet),
                "layout": self.h.guard(self.layout), "history": self.history}

    # --- searches -------------------------------------------------------------------------------------------

    async def snooze(self, update: Update, context: ContextTypes.DEFAULT_TYPE, args: str) -> Reply:
        """`/snooze 12 2h`: no alerts of search 12 for two hours, though it keeps checking; `/snooze 12 off`."""
        raw, _, duration = args.strip().partition(" ")
        if not raw:
            raise InputError("Which search, and for how long? Send /snooze 12 2h (or /snooze 12 off to wake it).",
                             field="search_id")
        if not duration.strip():
            raise InputError(f"For how long? Send /snooze {raw[:12]} 2h, 1d or 1w, or /snooze {raw[:12]} off to "
                             "wake it.", field="duration")
        search = await self.h.change(update, context, self.commands.snooze_search, raw, duration=duration.strip())
        name = f"#{search.id} \u201c{html.escape(search.query, quote=False)}\u201d"
        if search.snoozed_until is None:
            return f"Search {name} is awake: new matches are posted here again.", None
        return ((f"Snoozed {name} until {search.snoozed_until:%Y-%m-%d %H:%M} UTC. It keeps checking, and what it "
                 f"finds meanwhile is not posted later. /snooze {search.id} off wakes it sooner."), None)

    async def history(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """`/history 12` or `/history ebay:1234567890`: a chart (uploaded) with its summary as the caption."""
        if not await self.h.usable(update):
            return
        try:
            found = await self.load_history(update, command_args(update))
        except InputError as err:
            await self.h.reply(update, html.escape(str(err), quote=False))
            return
        await self.send_history(update, found)

    async def load_history(self, update: Update, args: str) -> History:
        """Read-only, as /show: anyone in the chat may look at the searches whose alerts come there."""
        target = args.strip()
        if not target:
            raise InputError("Which search or listing? Send /history 12, or /history ebay:1234567890 for one "
                             "listing.", field="target")
        here = self.h.here(update)
        search = await self.h.search_here(here, target)
        return await load_history(self.commands, self.h.actor(update, admin=True), target,
                                  scope=search.scope if search else here)

    async def send_history(self, update: Update, found: History) -> None:
        chat, message = update.effective_chat, update.effective_message
        assert chat is not None and message is not None
        try:
            png = await found.chart()
        except CHART_FAILURES as err:
            log.warning("could not draw a history chart; answering with its text: %s", err)
            await self.h.reply(update, render_plain(found.text))
            return
        reply_to = message.message_id if chat.type != ChatType.PRIVATE else None
        try:
            await self.h.notifier.send_picture(chat.id, png, render_plain(found.text, limit=CAPTION_LIMIT),
                                               filename=CHART_FILENAME, reply_to=reply_to)
        except BadRequest as err:
            # Telegram would not take the picture (a chat without the right to send photos): the text still helps.
            log.info("Telegram would not take a history chart (%s); answering with its text", err.message)
            await self.h.reply(update, render_plain(found.text))

    # --- this chat ------------------------------------------------------------------------------------------

    async def quiet(self, update: Update, context: ContextTypes.DEFAULT_TYPE, args: str) -> Reply:
        """`/quiet 22:00-07:00 Europe/Berlin`: this chat's alerts wait through the window; `/quiet off`."""
        destination = self.destination(update)
        if not args.strip():
            settings = await self.commands.destination_settings(destination)
            now = (f"Quiet hours here: {settings.quiet_hours}." if settings.quiet_hours
                   else "No quiet hours here: alerts are posted as they come.")
            return ((f"{html.escape(now, quote=False)}\nSet them with <code>/quiet 22:00-07:00 Europe/Berlin</code>, "
                     "stop them with <code>/quiet off</code>."), None)
        window, zone = parse_quiet_line(args)
        await self.check_chat_rights(update, context)
        settings = await self.commands.set_quiet_hours(destination, window, zone)
        return html.escape(describe_quiet(settings), quote=False), None

    async def layout(self, update: Update, context: ContextTypes.DEFAULT_TYPE, args: str) -> Reply:
        """`/layout compact` (one line per alert) or `/layout full` (a card) for this chat."""
        destination = self.destination(update)
        if not args.strip():
            settings = await self.commands.destination_settings(destination)
            other = Layout.FULL if settings.layout is Layout.COMPACT else Layout.COMPACT
            return ((f"Alerts here come as {LAYOUT_WORDS[settings.layout]}. "
                     f"<code>/layout {other}</code> makes them {LAYOUT_WORDS[other]}."), None)
        await self.check_chat_rights(update, context)
        settings = await self.commands.set_layout(destination, args)
        return f"From now on alerts here come as {LAYOUT_WORDS[settings.layout]}.", None

    def destination(self, update: Update) -> Destination:
        return Destination(self.h.notifier.platform, self.h.here(update))

    async def check_chat_rights(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A private chat is its user's; a group's settings are its admins', as TelegramHandlers.change decides."""
        chat = update.effective_chat
        assert chat is not None
        if chat.type != ChatType.PRIVATE and not await self.h.is_group_admin(update, context):
            raise PermissionDeniedError(NOT_ADMIN)


def describe_quiet(settings: DestinationSettings) -> str:
    quiet = settings.quiet_hours
    if quiet is None:
        return "No quiet hours here any more: alerts are posted as they come."
    return f"Quiet hours here: {quiet}. Alerts that come meanwhile are posted when they end."
