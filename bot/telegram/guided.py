"""The guided /add: with nothing after the command, three short questions instead of the one-line grammar."""

from __future__ import annotations

import html
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from telegram import Update
from telegram.constants import ChatType
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    ConversationHandler,
    MessageHandler,
    filters,
)
from telegram.warnings import PTBUserWarning

from bot.telegram.grammar import parse_price_answer, parse_search_line
from bot.telegram.notifier import to_markup
from bot.telegram.render import Button
from scout.errors import InputError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from bot.telegram.handlers import TelegramHandlers

    Step = Callable[[Update, ContextTypes.DEFAULT_TYPE], Awaitable[int | None]]

ASK_QUERY, ASK_PRICE, ASK_MARKETS = range(3)
END = ConversationHandler.END
# The conversation's handlers run in this group, before the commands' (group 0): a command sent mid-conversation
# ends it here and still runs there, while an answer stops here (ApplicationHandlerStop) and reaches nothing else.
GUIDED_GROUP = -1
# A guided /add left this long without an answer is over: a much later message is not taken for an answer.
EXPIRES_AFTER = timedelta(minutes=10)
# The "where" buttons carry `add:<user id>:<marketplace key>` (`*` for the defaults): the user id says whose
# question it is, and the prefix keeps them apart from the alert buttons' `ds:<action>:<search id>`.
CHOICE_PREFIX = "add"
DEFAULTS = "*"
CHOICE_PATTERN = rf"^{CHOICE_PREFIX}:"
BUTTONS_PER_ROW = 2
_DEFAULT_WORDS = ("", "default", "defaults")
_ALL_WORDS = ("all", "any", "everywhere", "both")

QUESTIONS = {
    ASK_QUERY: "What should I look for? Send the words; put - before a word to leave out listings with it, as in "
               "<code>rtx 3080 -broken</code>. /cancel stops.",
    ASK_PRICE: "Any price limits? Send <code>&lt;500</code>, <code>&gt;100 &lt;500</code>, <code>100-500</code> "
               "or <code>any</code>.",
}
EXPIRED = (f"Your /add expired after {EXPIRES_AFTER.seconds // 60} minutes without an answer; nothing was saved. "
           "Send /add to start again.")
STOPPED = "Stopped your /add; nothing was saved."
CANCELLED = "Cancelled; nothing was saved."
NOT_YOURS = "Only the member who started this /add can answer it. Send /add to save a search of your own."
CLOSED = "This question is closed. Send /add to save a search."
STALE_BUTTON = "This button does not work any more."


@dataclass
class Draft:
    """A guided /add in progress: the fields answered so far, and when the bot last asked something."""

    asked_at: datetime
    fields: dict[str, Any] = field(default_factory=dict)


def install_guided_add(application: Application, handlers: TelegramHandlers) -> None:
    """The /add command (one line saves at once; a bare /add asks what, how much and where), and the answer to
    a "where" button of a question that is closed or someone else's."""
    steps = GuidedAdd(handlers)
    application.add_handler(build_conversation(steps), group=GUIDED_GROUP)
    application.add_handler(CallbackQueryHandler(steps.closed_question, pattern=CHOICE_PATTERN))


def build_conversation(steps: GuidedAdd) -> ConversationHandler:
    new = filters.UpdateType.MESSAGE & ~filters.COMMAND
    # In groups only replies count as answers, not the chat going on around them.
    answer = new & filters.TEXT & (filters.ChatType.PRIVATE | filters.REPLY)
    not_text = new & filters.ChatType.PRIVATE & ~filters.TEXT

    def asking(step: Step) -> list[Any]:
        return [MessageHandler(answer, stop_here(step)), MessageHandler(not_text, stop_here(steps.not_text))]

    with warnings.catch_warnings():
        # PTB warns that a button press then belongs to the presser's conversation in that chat, not to the
        # message that shows the button: that is what the "where" buttons need.
        warnings.filterwarnings("ignore", message=".*per_message=False.*", category=PTBUserWarning)
        return ConversationHandler(
            entry_points=[CommandHandler("add", stop_here(steps.start), filters=filters.UpdateType.MESSAGE)],
            states={
                ASK_QUERY: asking(steps.got_query),
                ASK_PRICE: asking(steps.got_price),
                ASK_MARKETS: [*asking(steps.got_markets),
                              CallbackQueryHandler(stop_here(steps.got_market_button), pattern=CHOICE_PATTERN)],
            },
            fallbacks=[
                CommandHandler("cancel", stop_here(steps.cancel), filters=filters.UpdateType.MESSAGE),
                MessageHandler(filters.COMMAND & filters.UpdateType.MESSAGE, steps.end_by_command),
            ],
            allow_reentry=True,
            name="guided-add",
        )


def stop_here(step: Step) -> Callable[[Update, ContextTypes.DEFAULT_TYPE], Awaitable[None]]:
    """The update was this conversation's to answer: later groups (the chatter reply, /cancel's "nothing to
    cancel", the other commands) do not see it."""

    async def run(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        raise ApplicationHandlerStop(await step(update, context))

    return run


class GuidedAdd:
    """Each answer is checked as add_search checks a search, so a mistake is caught at the question that caused it."""

    def __init__(self, handlers: TelegramHandlers) -> None:
        self.h = handlers
        self.commands = handlers.commands

    # --- the draft ------------------------------------------------------------------------------------------

    @staticmethod
    def _key(update: Update) -> tuple[str, int]:
        assert update.effective_chat is not None
        return "add", update.effective_chat.id

    def _begin(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> Draft:
        assert context.user_data is not None
        context.user_data[self._key(update)] = draft = Draft(self.commands.now())
        return draft

    def _take(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> Draft | None:
        """This member's draft in this chat; None (and forgotten) when it waited longer than EXPIRES_AFTER."""
        draft = (context.user_data or {}).get(self._key(update))
        if draft is not None and self.commands.now() - draft.asked_at > EXPIRES_AFTER:
            self._forget(update, context)
            return None
        return draft

    def _forget(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if context.user_data is not None:
            context.user_data.pop(self._key(update), None)

    async def _live(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> Draft | None:
        """The draft an answer is for; when it expired, the user hears so and gets None."""
        draft = self._take(update, context)
        if draft is None:
            await self.h.reply(update, EXPIRED)
        return draft

    def _check(self, fields: dict[str, Any]) -> None:
        """Check the answers so far as add_search would. Before "where" is answered, some choice taking them is
        enough: the defaults, or one marketplace alone (only the feed takes a feed address)."""
        fields = {"query": "", **fields}
        try:
            self.commands.build_search_spec(**fields)
        except InputError:
            if "marketplaces" in fields or not self.commands.usable_marketplaces(**fields):
                raise

    def _fits(self, fields: dict[str, Any]) -> bool:
        try:
            self._check(fields)
        except InputError:
            return False
        return True

    # --- the steps ------------------------------------------------------------------------------------------

    async def start(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
        if not await self.h.usable(update):
            return END
        self._forget(update, context)
        line = command_args(update)
        if line:
            try:
                text, markup = await self.h.add_line(update, line)
            except InputError as err:
                text, markup = html.escape(str(err), quote=False), None
            await self.h.reply(update, text, markup)
            return END
        return await self._ask(update, self._begin(update, context), ASK_QUERY)

    async def got_query(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
        draft = await self._live(update, context)
        if draft is None:
            return END
        try:
            line = parse_search_line(_text(update))
            if line.url:
                # A pasted search address answers every question at once; a bad one is asked again.
                text, markup = await self.h.add_line(update, _text(update))
                self._forget(update, context)
                await self.h.reply(update, text, markup)
                return END
            fields = line.fields()
            self._check(fields)
        except InputError as err:
            return await self._again(update, draft, err, ASK_QUERY)
        draft.fields.update(fields)
        return await self._next(update, context, draft)

    async def got_price(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
        draft = await self._live(update, context)
        if draft is None:
            return END
        try:
            low, high = parse_price_answer(_text(update))
            prices = {"min_price": low, "max_price": high}
            self._check({**draft.fields, **prices})
        except InputError as err:
            return await self._again(update, draft, err, ASK_PRICE)
        draft.fields.update(prices)
        return await self._next(update, context, draft)

    async def got_markets(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
        draft = await self._live(update, context)
        if draft is None:
            return END
        text = _text(update).replace("@", " ").replace(",", " ").strip().lower()
        if text in _DEFAULT_WORDS:
            chosen = []
        elif text in _ALL_WORDS:
            chosen = self.commands.usable_marketplaces(**draft.fields)
        else:
            chosen = text.split()
        return await self._choose(update, context, draft, chosen)

    async def got_market_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> int | None:
        query, user = update.callback_query, update.effective_user
        assert query is not None and user is not None
        choice = parse_choice(query.data)
        if choice is None or choice[0] != user.id:
            # Someone else's question in a group, while this member has a question of their own open.
            await query.answer(NOT_YOURS if choice else STALE_BUTTON, show_alert=True)
            return None  # stay at the same question
        await query.answer()
        draft = await self._live(update, context)
        if draft is None:
            return END
        return await self._choose(update, context, draft, [] if choice[1] == DEFAULTS else [choice[1]])

    async def closed_question(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A "where" button no open question of the presser's took: someone else's, or an old one of theirs."""
        query, user = update.callback_query, update.effective_user
        assert query is not None
        choice = parse_choice(query.data)
        if choice is None:
            text = STALE_BUTTON
        else:
            text = CLOSED if user is not None and choice[0] == user.id else NOT_YOURS
        await query.answer(text, show_alert=True)

    async def not_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> int | None:
        if await self._live(update, context) is None:
            return END
        await self.h.reply(update, "Please answer with text, or send /cancel.")
        return None  # stay at the same question

    async def cancel(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
        draft = self._take(update, context)
        self._forget(update, context)
        await self.h.reply(update, CANCELLED if draft else EXPIRED)
        return END

    async def end_by_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> int | None:
        """Any other command ends the /add; it is not stopped here, so the command itself runs next."""
        if for_another_bot(update, context.bot.username):
            return None
        draft = self._take(update, context)
        self._forget(update, context)
        await self.h.reply(update, STOPPED if draft else EXPIRED)
        return END

    # --- asking ---------------------------------------------------------------------------------------------

    async def _choose(self, update: Update, context: ContextTypes.DEFAULT_TYPE, draft: Draft,
                      chosen: list[str]) -> int:
        try:
            self._check({**draft.fields, "marketplaces": chosen})
        except InputError as err:
            return await self._again(update, draft, err, ASK_MARKETS)
        draft.fields["marketplaces"] = chosen
        return await self._next(update, context, draft)

    async def _next(self, update: Update, context: ContextTypes.DEFAULT_TYPE, draft: Draft) -> int:
        """Ask the first question the answers so far leave open (a full line answers them all), or save."""
        if "min_price" not in draft.fields and "max_price" not in draft.fields:
            return await self._ask(update, draft, ASK_PRICE)
        if "marketplaces" not in draft.fields:
            return await self._ask(update, draft, ASK_MARKETS)
        self._forget(update, context)
        fields = {key: value for key, value in draft.fields.items() if value not in (None, [])}
        try:
            text, markup = await self.h.save(update, fields)
        except InputError as err:
            text, markup = html.escape(str(err), quote=False) + "\nNothing was saved; /add starts again.", None
        await self.h.reply(update, text, markup)
        return END

    async def _again(self, update: Update, draft: Draft, err: InputError, state: int) -> int:
        return await self._ask(update, draft, state, f"{html.escape(str(err), quote=False)}\nTry again, or /cancel.")

    async def _ask(self, update: Update, draft: Draft, state: int, text: str | None = None) -> int:
        draft.asked_at = self.commands.now()
        if state == ASK_MARKETS:
            question, markup = self._where(update, draft)
            await self.h.reply(update, text or question, markup)
        else:
            await self.h.reply(update, text or QUESTIONS[state], ask=True)
        return state

    def _where(self, update: Update, draft: Draft) -> tuple[str, Any]:
        """The "where" question: a button per marketplace that can run this search, and one for the defaults.

        A marketplace that needs more than the questions ask (the feed needs its address) gets no button; a line
        that gives it (`near https://...`) makes it one.
        """
        assert update.effective_user is not None and update.effective_chat is not None
        user, adapters = update.effective_user.id, self.commands.adapters
        offered = self.commands.usable_marketplaces(**draft.fields)
        rows: list[tuple[Button, ...]] = []
        if self._fits({**draft.fields, "marketplaces": []}):
            names = ", ".join(adapters[key].name for key in self.commands.default_marketplaces)
            rows.append((Button(f"Default: {names}", data=choice_data(user, DEFAULTS)),))
        buttons = [Button(adapters[key].name, data=choice_data(user, key)) for key in offered]
        rows += [tuple(buttons[i : i + BUTTONS_PER_ROW]) for i in range(0, len(buttons), BUTTONS_PER_ROW)]
        verb = "send" if update.effective_chat.type == ChatType.PRIVATE else "reply with"
        question = (f"Where should I look? Tap a button, or {verb} some of: {', '.join(offered)} "
                    "(or <code>all</code> of them, or <code>default</code>).")
        return question, to_markup(tuple(rows))


def choice_data(user_id: int, choice: str) -> str:
    """`add:42:ebay`: a "where" button of the question asked to user 42."""
    return f"{CHOICE_PREFIX}:{user_id}:{choice}"


def parse_choice(data: str | None) -> tuple[int, str] | None:
    """(user id, marketplace key or DEFAULTS) from a "where" button, or None for anything else."""
    parts = (data or "").split(":")
    if len(parts) != 3 or parts[0] != CHOICE_PREFIX or not parts[1].isdigit() or not parts[2]:
        return None
    return int(parts[1]), parts[2]


def command_args(update: Update) -> str:
    """The text after `/command` or `/command@BotName`."""
    text = update.effective_message.text if update.effective_message else None
    parts = (text or "").split(maxsplit=1)
    return parts[1].strip() if len(parts) > 1 else ""


def for_another_bot(update: Update, username: str | None) -> bool:
    """Whether the command is addressed to another bot in the group (`/list@OtherBot`)."""
    text = update.effective_message.text if update.effective_message else None
    _, _, addressee = (text or "").partition(" ")[0].partition("@")
    return bool(addressee) and addressee.lower() != (username or "").lower()


def _text(update: Update) -> str:
    message = update.effective_message
    return (message.text or "") if message is not None else ""
