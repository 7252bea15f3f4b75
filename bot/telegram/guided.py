"""The guided /add: with nothing after the command, three short questions instead of the one-line grammar."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from telegram import Update
from telegram.constants import ChatType
from telegram.ext import CommandHandler, ContextTypes, ConversationHandler, MessageHandler, filters

from bot.commands import build_spec
from bot.telegram.grammar import parse_price_answer, parse_search_line
from scout.errors import InputError

if TYPE_CHECKING:
    from bot.telegram.handlers import TelegramHandlers

ASK_QUERY, ASK_PRICE, ASK_MARKETS = range(3)
END = ConversationHandler.END
_ALL = ("", "all", "any", "everywhere", "both")


def build_guided_add(handlers: TelegramHandlers) -> ConversationHandler:
    """The /add entry point: one line saves at once; a bare /add asks what, how much and where."""
    steps = GuidedAdd(handlers)
    new = filters.UpdateType.MESSAGE & ~filters.COMMAND
    # In groups only replies to the bot's question count as answers, not the chat going on around it.
    answer = new & filters.TEXT & (filters.ChatType.PRIVATE | filters.REPLY)
    not_text = new & filters.ChatType.PRIVATE & ~filters.TEXT
    return ConversationHandler(
        entry_points=[CommandHandler("add", steps.start, filters=filters.UpdateType.MESSAGE)],
        states={
            ASK_QUERY: [MessageHandler(answer, steps.got_query), MessageHandler(not_text, steps.not_text)],
            ASK_PRICE: [MessageHandler(answer, steps.got_price), MessageHandler(not_text, steps.not_text)],
            ASK_MARKETS: [MessageHandler(answer, steps.got_markets), MessageHandler(not_text, steps.not_text)],
        },
        fallbacks=[CommandHandler("cancel", steps.cancel, filters=filters.UpdateType.MESSAGE)],
        allow_reentry=True,
        name="guided-add",
    )


class GuidedAdd:
    """Each answer is checked by build_spec as it comes, so a mistake is caught at the question that caused it."""

    def __init__(self, handlers: TelegramHandlers) -> None:
        self.h = handlers

    @staticmethod
    def _draft(update: Update, context: ContextTypes.DEFAULT_TYPE) -> dict[str, Any]:
        assert update.effective_chat is not None and context.user_data is not None
        return context.user_data.setdefault(("add", update.effective_chat.id), {})

    @staticmethod
    def _forget(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if update.effective_chat is not None and context.user_data is not None:
            context.user_data.pop(("add", update.effective_chat.id), None)

    def _check(self, fields: dict[str, Any]) -> None:
        build_spec(self.h.commands.adapters, **{"query": "", **fields})

    async def start(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
        if not await self.h.usable(update):
            return END
        line = command_args(update)
        self._forget(update, context)
        if line:
            try:
                text, markup = await self.h.add_line(update, line)
            except InputError as err:
                text, markup = html.escape(str(err), quote=False), None
            await self.h.reply(update, text, markup)
            return END
        self._draft(update, context)
        await self.h.reply(update, "What should I look for? Send the words; put - before a word to leave out "
                                   "listings with it, as in <code>rtx 3080 -broken</code>. /cancel stops.", ask=True)
        return ASK_QUERY

    async def got_query(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
        draft = self._draft(update, context)
        try:
            fields = parse_search_line(_text(update)).fields()
            self._check(fields)
        except InputError as err:
            return await self._again(update, err, ASK_QUERY)
        draft.update(fields)
        return await self._next(update, context)

    async def got_price(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
        draft = self._draft(update, context)
        try:
            low, high = parse_price_answer(_text(update))
            prices = {"min_price": low, "max_price": high}
            self._check({**draft, **prices})
        except InputError as err:
            return await self._again(update, err, ASK_PRICE)
        draft.update(prices)
        return await self._next(update, context)

    async def got_markets(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
        draft = self._draft(update, context)
        text = _text(update).replace("@", " ").replace(",", " ").strip().lower()
        chosen = [] if text in _ALL else text.split()
        try:
            self._check({**draft, "marketplaces": chosen})
        except InputError as err:
            return await self._again(update, err, ASK_MARKETS)
        draft["marketplaces"] = chosen
        return await self._next(update, context)

    async def _next(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
        """Ask the first question the answers so far leave open (a full line answers them all), or save."""
        draft = self._draft(update, context)
        if "min_price" not in draft and "max_price" not in draft:
            await self.h.reply(update, "Any price limits? Send <code>&lt;500</code>, <code>&gt;100 &lt;500</code>, "
                                       "<code>100-500</code> or <code>any</code>.", ask=True)
            return ASK_PRICE
        if "marketplaces" not in draft:
            names = ", ".join(sorted(self.h.commands.adapters))
            await self.h.reply(update, f"Where should I look? Send some of: {names}, or <code>all</code>.", ask=True)
            return ASK_MARKETS
        fields = {key: value for key, value in draft.items() if value not in (None, [])}
        try:
            text, markup = await self.h.save(update, fields)
        except InputError as err:
            text, markup = html.escape(str(err), quote=False) + "\nNothing was saved; /add starts again.", None
        self._forget(update, context)
        await self.h.reply(update, text, markup)
        return END

    async def _again(self, update: Update, err: InputError, state: int) -> int:
        await self.h.reply(update, f"{html.escape(str(err), quote=False)}\nTry again, or /cancel.", ask=True)
        return state

    async def not_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> int | None:
        await self.h.reply(update, "Please answer with text, or send /cancel.")
        return None  # stay at the same question

    async def cancel(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
        self._forget(update, context)
        if update.effective_chat is not None and update.effective_chat.type != ChatType.CHANNEL:
            await self.h.reply(update, "Cancelled; nothing was saved.")
        return END


def command_args(update: Update) -> str:
    """The text after `/command` or `/command@BotName`."""
    text = update.effective_message.text if update.effective_message else None
    parts = (text or "").split(maxsplit=1)
    return parts[1].strip() if len(parts) > 1 else ""


def _text(update: Update) -> str:
    message = update.effective_message
    return (message.text or "") if message is not None else ""
